package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set by the package build (scripts/deb.sh: -ldflags "-X main.version=…").
var version = ""

func init() {
	register(&command{
		name:  "version",
		short: "print the version",
		run: func(ctx context.Context, args []string) error {
			fmt.Println(versionString())
			return nil
		},
	})
}

// versionString is the package version, else the VCS revision the binary was built from.
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "dev-" + s.Value
			}
		}
	}
	return "dev"
}
