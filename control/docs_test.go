package control

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// apiDoc is the API reference for script writers.
var apiDoc = filepath.Join("..", "docs", "local-api.md")

// typeName is how the reference names a wire type: Share, []Share.
func typeName(v any) string {
	if v == nil {
		return ""
	}
	return strings.ReplaceAll(reflect.TypeOf(v).String(), "control.", "")
}

// docRow is a route as the reference's table shows it.
func docRow(rt Route) string {
	cell := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	return strings.Join([]string{"", cell(rt.Method), cell(rt.Path), cell(rt.Query), cell(typeName(rt.In)), cell(typeName(rt.Out)), rt.Doc, ""}, " | ")
}

// section returns the text under the heading "### name" up to the next
// heading.
func section(doc, name string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n### "+name+"\n")
	if !ok {
		return "", false
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}

// TestReferenceMatchesRouteTable: docs/local-api.md lists exactly the
// routes of the table, in its order and words, and describes every field
// of every type they take or give (and no field that is gone).
func TestReferenceMatchesRouteTable(t *testing.T) {
	b, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	routes, ok := section(doc, "Routes")
	if !ok {
		t.Fatal("the reference has no '### Routes' section")
	}
	var got []string
	for _, line := range strings.Split(routes, "\n") {
		if strings.HasPrefix(line, "| `") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	var want []string
	types := map[string]reflect.Type{"ErrorBody": reflect.TypeOf(ErrorBody{})}
	for _, rt := range Routes() {
		want = append(want, strings.TrimSpace(docRow(rt)))
		for _, v := range []any{rt.In, rt.Out} {
			if v != nil {
				ty := reflect.TypeOf(v)
				if ty.Kind() == reflect.Slice {
					ty = ty.Elem()
				}
				types[ty.Name()] = ty
			}
		}
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("the reference lacks the route\n%s", want[i])
		case i >= len(want):
			t.Errorf("the reference has a route the table has not:\n%s", got[i])
		case got[i] != want[i]:
			t.Errorf("route %d differs:\nreference: %s\ntable:     %s", i+1, got[i], want[i])
		}
	}
	// Types reached from other types (CreatedInvite holds an Invite).
	for changed := true; changed; {
		changed = false
		for _, ty := range types {
			for i := 0; i < ty.NumField(); i++ {
				ft := ty.Field(i).Type
				if ft.Kind() == reflect.Struct && ft.PkgPath() == ty.PkgPath() && types[ft.Name()] == nil {
					types[ft.Name()] = ft
					changed = true
				}
			}
		}
	}
	fieldRow := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\|")
	for name, ty := range types {
		sec, ok := section(doc, name)
		if !ok {
			t.Errorf("the reference does not describe %s (a '### %s' section)", name, name)
			continue
		}
		fields := map[string]bool{}
		for i := 0; i < ty.NumField(); i++ {
			tag, _, _ := strings.Cut(ty.Field(i).Tag.Get("json"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = true
			}
		}
		documented := map[string]bool{}
		for _, m := range fieldRow.FindAllStringSubmatch(sec, -1) {
			documented[m[1]] = true
			if !fields[m[1]] {
				t.Errorf("the reference describes %s.%s, which the API does not have", name, m[1])
			}
		}
		for f := range fields {
			if !documented[f] {
				t.Errorf("the reference does not describe %s.%s (a row '| `%s` | ...' under '### %s')", name, f, f, name)
			}
		}
	}
}
