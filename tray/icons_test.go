package tray

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/test"
)

// iconSizes are the PNG sizes of the installed icon theme.
var iconSizes = []int{16, 22, 24, 32, 48, 64, 128, 256, 512}

// opaque counts the pixels that are not transparent.
func opaque(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a > 0 {
				n++
			}
		}
	}
	return n
}

// TestTrayIconsRender draws every icon the way fyne draws a tray icon (its
// SVG rasteriser) and compares with the committed picture.
func TestTrayIconsRender(t *testing.T) {
	test.NewTempApp(t)
	var objs []fyne.CanvasObject
	seen := map[fyne.Resource]bool{}
	for _, dark := range []bool{false, true} {
		for _, s := range []IconState{IconIdle, IconPending, IconError} {
			r := TrayIcon(s, dark)
			if seen[r] {
				t.Errorf("icon %v dark=%v is shared with another state", s, dark)
			}
			seen[r] = true
			want := fmt.Sprintf("ocm-agent-%s-%s.svg", s, map[bool]string{false: "light", true: "dark"}[dark])
			if r.Name() != want {
				t.Errorf("icon for %v dark=%v is %s, want %s", s, dark, r.Name(), want)
			}
			img := canvas.NewImageFromResource(r)
			img.SetMinSize(fyne.NewSquareSize(48))
			objs = append(objs, img)
		}
	}
	app := canvas.NewImageFromResource(AppIcon)
	app.SetMinSize(fyne.NewSquareSize(48))
	objs = append(objs, app)
	row := container.New(layout.NewGridLayoutWithColumns(len(objs)), objs...)
	w := test.NewTempWindow(t, row)
	w.SetPadded(false)
	w.Resize(fyne.NewSize(float32(48*len(objs)), 48))
	captured := w.Canvas().Capture()
	if opaque(captured) == 0 {
		t.Fatal("the icons render to nothing")
	}
	test.AssertImageMatches(t, "icons.png", captured)
	if TrayIcon(IconState(42), false) != TrayIcon(IconIdle, false) {
		t.Error("an unknown state does not fall back to idle")
	}
}

// TestPackagedIconsUpToDate checks the installed icon theme
// (packaging/icons, made by render.sh) against the sources.
func TestPackagedIconsUpToDate(t *testing.T) {
	root := filepath.Join("..", "packaging", "icons", "hicolor")
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("no icon theme at %s: %v", root, err)
	}
	entries, err := iconFS.ReadDir("icons")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 7 {
		t.Errorf("%d icon sources, want the app icon and 3 states × light/dark", len(entries))
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".svg")
		ctx := "status"
		if name == "ocm-agent" {
			ctx = "apps"
		}
		src, _ := iconFS.ReadFile("icons/" + e.Name())
		installed, err := os.ReadFile(filepath.Join(root, "scalable", ctx, e.Name()))
		if err != nil || !bytes.Equal(src, installed) {
			t.Errorf("scalable/%s/%s is missing or stale (run packaging/icons/render.sh): %v", ctx, e.Name(), err)
		}
		for _, size := range iconSizes {
			p := filepath.Join(root, fmt.Sprintf("%dx%d", size, size), ctx, name+".png")
			f, err := os.Open(p)
			if err != nil {
				t.Errorf("missing %s", p)
				continue
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
				t.Errorf("%s is %dx%d", p, b.Dx(), b.Dy())
			}
			if opaque(img) < size*size/20 {
				t.Errorf("%s is nearly empty", p)
			}
		}
	}
}
