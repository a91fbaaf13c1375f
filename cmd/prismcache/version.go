package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set by release builds with -ldflags "-X main.version=v1.2.3"
// (make build, make release). Left empty, the version comes from the build
// info Go records: the module version of "go install …@v1.2.3", or for a
// build from a checkout the pseudo-version Go derives from its tag and commit.
var version string

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Prints the version, the commit it was built from and the Go version.", "prismcache version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// buildVersion is the version of this build: main.version when the build
// set it, else the main module's version from the build info, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionString is one line: prismcache v1.2.3 (commit 0123456789ab,
// 2026-11-02T10:00:00Z, go1.26.8 linux/amd64); "modified" marks a build from
// a tree with uncommitted changes.
func versionString() string {
	details := []string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, at string
		modified := false
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.time":
				at = kv.Value
			case "vcs.modified":
				modified = kv.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if modified {
				rev += " modified"
			}
			details = append(details, "commit "+rev)
		}
		if at != "" {
			details = append(details, at)
		}
	}
	details = append(details, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return "prismcache " + buildVersion() + " (" + strings.Join(details, ", ") + ")"
}
