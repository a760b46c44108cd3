package agent

import "github.com/ocm-agent/ocm-agent/bookmarks"

// bookmark keeps the file managers' sidebars in step with the setting
// file-manager-bookmark: the mount is added once (the record in the state
// directory remembers it, so an entry removed by hand stays removed), and
// taken out again when the setting is off. Failures are only logged.
func (d *Daemon) bookmark() {
	cfg, files, record := d.cfg, bookmarks.UserFiles(), bookmarks.RecordPath(d.cfg.StateDir)
	if !cfg.Bookmark {
		removed, err := bookmarks.Withdraw(files, record)
		for _, c := range removed {
			d.log.Info("took the shares folder out of a file manager's sidebar (file-manager-bookmark is off)", "file", c.File, "dir", c.Dir)
		}
		if err != nil {
			d.log.Warn("could not take the shares folder out of the file managers' sidebars", "err", err)
		}
		return
	}
	if cfg.Mount == "" {
		return
	}
	added, err := bookmarks.Install(files, cfg.Mount, bookmarks.Label, record)
	for _, c := range added {
		d.log.Info("added the shares folder to a file manager's sidebar", "file", c.File, "dir", c.Dir)
	}
	if err != nil {
		d.log.Warn("could not add the shares folder to the file managers' sidebars", "err", err)
	} else if len(added) == 0 {
		d.log.Debug("file manager sidebars: nothing to add", "record", record)
	}
}
