package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"tsconnect/recorder"
	"tsconnect/recorder/recnode"
)

func init() {
	var cfg recnode.Config
	var retention time.Duration
	var quotaMiB, minFreeMiB int64
	register(&command{
		name:  "recorder",
		usage: "--login-server URL [--auth-key KEY|file:PATH] [--hostname NAME] [--state DIR] [--storage DIR] [--retention DUR] [--source-quota-mib N] [--min-free-mib N]",
		short: "join the network as a session recorder node",
		long: `Runs a session recorder in the foreground: it joins the network as a node (use an
auth key with the recorder's tag, e.g. tag:recorder) and takes SSH session recordings
(asciicast v2) from agents on overlay port 8410 — the acls must let the agents reach
tag:recorder:8410. Each recording is stored under --storage as ID.cast (mode 0600) and
ID.json (who, from where, to which node, as whom, start, end, exit code, size).

New recordings are refused while the storage has less than --min-free-mib free, or the
sending node keeps --source-quota-mib of recordings; --retention deletes recordings that
ended longer ago (0 keeps them).`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfg.ControlURL, "login-server", "", "control server URL (required)")
			fs.StringVar(&cfg.AuthKey, "auth-key", "", "pre-auth key used to register the first time, or file:PATH to read it from PATH (default $"+authKeyEnv+")")
			fs.StringVar(&cfg.Hostname, "hostname", "", "node name to ask for (default: the machine's hostname)")
			fs.StringVar(&cfg.StateDir, "state", filepath.Join(defaultStateRoot(), "recorder"), "state directory (keys; keep it private)")
			fs.StringVar(&cfg.Storage, "storage", "", "directory of the recordings (default STATE/recordings)")
			fs.DurationVar(&retention, "retention", 0, "delete recordings that ended longer ago than this (e.g. 2160h); 0 keeps them")
			fs.Int64Var(&quotaMiB, "source-quota-mib", 0, "MiB of recordings one node may keep; 0 means no quota")
			fs.Int64Var(&minFreeMiB, "min-free-mib", recorder.DefaultMinFree>>20, "refuse new recordings below this much free space (MiB)")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q (flags come before arguments)", args)
			}
			if cfg.ControlURL == "" {
				return fmt.Errorf("--login-server is required")
			}
			if retention < 0 || quotaMiB < 0 || minFreeMiB < 0 {
				return fmt.Errorf("--retention, --source-quota-mib and --min-free-mib must not be negative")
			}
			key, err := resolveAuthKey(cfg.AuthKey)
			if err != nil {
				return err
			}
			cfg.AuthKey = key
			cfg.Logf = logfTo("")
			cfg.Store = recorder.Options{Retention: retention, SourceQuota: quotaMiB << 20, MinFree: minFreeMiB << 20}
			if minFreeMiB == 0 {
				cfg.Store.MinFree = -1 // no floor: only a full disk stops a recording
			}
			r, err := recnode.Start(ctx, cfg)
			if err != nil {
				return versionRefusal(err, cfg.ControlURL)
			}
			nm := r.Node().NetMap()
			log.Printf("recorder: node %s, addresses %v, serving recordings on port %d", nm.Self.Name, nm.Self.Addresses, recorder.Port)
			<-ctx.Done()
			return r.Close()
		},
	})
}
