#!/bin/sh
# Refresh the desktop database (so ocm: links open the tray) and the icon
# cache after ocm-agent-tray is installed or removed.
if command -v update-desktop-database >/dev/null 2>&1; then
	update-desktop-database -q /usr/share/applications || :
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
	gtk-update-icon-cache -q -t /usr/share/icons/hicolor || :
fi
exit 0
