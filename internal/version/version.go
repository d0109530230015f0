// Package version says which build of istio-gitops is running: the version
// stamped at build time (make build, make release, the image), else the
// module version the go command recorded (`go install ...@v1.2.3`, or the
// pseudo-version of a checkout), with the VCS revision when recorded.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is stamped with -ldflags "-X
// github.com/istio-gitops/istio-gitops/internal/version.Version=v1.2.3".
// When empty, the module version from the build info is reported.
var Version string

// Info describes the running binary.
type Info struct {
	// Version is the stamped version, else the module version, else "devel".
	Version string `json:"version"`
	// Module is the main module's version as the go command recorded it.
	Module string `json:"module,omitempty"`
	// Revision is the VCS commit the binary was built from.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time (RFC 3339).
	Time string `json:"time,omitempty"`
	// Modified says the work tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// Go is the Go toolchain that built the binary.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get describes the running binary.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return From(bi, Version)
}

// From describes a binary from its build info (nil when absent) and its
// stamped version (empty when not stamped).
func From(bi *debug.BuildInfo, stamped string) Info {
	info := Info{Version: stamped, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Module = v
		}
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = info.Module
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}

// String is one line: the version, then the revision and toolchain.
func (i Info) String() string {
	var extra []string
	if i.Module != "" && i.Module != i.Version {
		extra = append(extra, "module "+i.Module)
	}
	if i.Revision != "" {
		r := "revision " + i.Revision
		if i.Modified {
			r += " (modified)"
		}
		extra = append(extra, r)
	}
	extra = append(extra, i.Go, i.Platform)
	return fmt.Sprintf("istio-gitops %s (%s)", i.Version, strings.Join(extra, ", "))
}
