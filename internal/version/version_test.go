package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, c := range []struct {
		name    string
		bi      *debug.BuildInfo
		stamped string
		want    Info
		line    string
	}{
		{"no build info", nil, "", Info{Version: "devel"}, "istio-gitops devel ("},
		{"go install @version", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, "",
			Info{Version: "v1.2.3", Module: "v1.2.3", Go: "go1.26.0"}, "istio-gitops v1.2.3 (go1.26.0, "},
		{"checkout without VCS", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, "",
			Info{Version: "devel", Go: "go1.26.0"}, "istio-gitops devel (go1.26.0, "},
		{"stamped over the build info", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20260102030405-0123456789ab+dirty"}, Settings: vcs}, "v1.3.0",
			Info{Version: "v1.3.0", Module: "v0.0.0-20260102030405-0123456789ab+dirty", Revision: "0123456789abcdef0123456789abcdef01234567",
				Time: "2026-01-02T03:04:05Z", Modified: true, Go: "go1.26.0"},
			"istio-gitops v1.3.0 (module v0.0.0-20260102030405-0123456789ab+dirty, revision 0123456789abcdef0123456789abcdef01234567 (modified), go1.26.0, "},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := From(c.bi, c.stamped)
			if got.Platform == "" {
				t.Error("no platform")
			}
			got.Platform = ""
			if c.want.Go == "" {
				c.want.Go = got.Go
			}
			if got != c.want {
				t.Errorf("From = %+v\nwant %+v", got, c.want)
			}
			if s := From(c.bi, c.stamped).String(); !strings.HasPrefix(s, c.line) {
				t.Errorf("String() = %q, want prefix %q", s, c.line)
			}
		})
	}
}
