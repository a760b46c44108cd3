package tray

import (
	"embed"

	"fyne.io/fyne/v2"
)

// The icon sources. packaging/icons/render.sh turns them into the
// installed hicolor theme.
//
//go:embed icons/*.svg
var iconFS embed.FS

func mustIcon(name string) fyne.Resource {
	data, err := iconFS.ReadFile("icons/" + name + ".svg")
	if err != nil {
		panic("tray: missing embedded icon " + name) // a build defect, caught by the tests
	}
	return fyne.NewStaticResource(name+".svg", data)
}

// AppIcon is the application's icon.
var AppIcon = mustIcon("ocm-agent")

var trayIcons = map[IconState][2]fyne.Resource{
	IconIdle:    {mustIcon("ocm-agent-idle-light"), mustIcon("ocm-agent-idle-dark")},
	IconPending: {mustIcon("ocm-agent-pending-light"), mustIcon("ocm-agent-pending-dark")},
	IconError:   {mustIcon("ocm-agent-error-light"), mustIcon("ocm-agent-error-dark")},
}

// TrayIcon is the tray icon for a state; dark picks the variant drawn for
// dark panels (a light glyph).
func TrayIcon(s IconState, dark bool) fyne.Resource {
	pair, ok := trayIcons[s]
	if !ok {
		pair = trayIcons[IconIdle]
	}
	if dark {
		return pair[1]
	}
	return pair[0]
}
