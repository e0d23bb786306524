package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is hark's version when a packager sets it at link time
// (-ldflags "-X main.version=v1.2.3"). Empty, as in a plain go build or go
// install, means: take it from the module build info, where go install of
// a tagged module records the tag and a build from a checkout "(devel)".
var version string

// versionInfo is what hark version shows: where the binary came from, for
// bug reports.
type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`               // vcs.revision, empty when the build recorded none
	CommitTime string `json:"commitTime,omitempty"` // vcs.time
	Modified   bool   `json:"modified"`             // the checkout had uncommitted changes
	Go         string `json:"go"`
}

// currentVersion is the versionInfo of this binary.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return versionInfoOf(bi, version)
}

// versionInfoOf reads the build info; linked, when set, wins over the
// module version. A binary built without module support (bi nil) or without
// VCS stamping (-buildvcs=false, a build outside a checkout) has no commit.
func versionInfoOf(bi *debug.BuildInfo, linked string) versionInfo {
	v := versionInfo{Version: "(devel)", Go: "unknown"}
	if bi != nil {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if linked != "" {
		v.Version = linked
	}
	return v
}

// text is the human form: three lines, the commit shortened to 12 digits.
func (v versionInfo) text() string {
	commit := "unknown"
	if v.Commit != "" {
		commit = v.Commit[:min(12, len(v.Commit))]
		var notes []string
		if v.CommitTime != "" {
			notes = append(notes, v.CommitTime)
		}
		if v.Modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			commit += " (" + strings.Join(notes, ", ") + ")"
		}
	}
	return fmt.Sprintf("hark %s\ncommit: %s\ngo: %s\n", v.Version, commit, v.Go)
}

// setVersion gives root a --version flag that prints what hark version
// prints.
func setVersion(root *cobra.Command) {
	v := currentVersion()
	root.Version = v.Version
	// The template is text/template; build info holds no "{{", but a
	// linked version might.
	root.SetVersionTemplate(strings.ReplaceAll(v.text(), "{{", "{{`{{`}}"))
}

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show hark's version, commit and the Go version that built it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.check(); err != nil {
				return err
			}
			v := currentVersion()
			if g.output == "json" {
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), v.text())
			return err
		},
	}
}
