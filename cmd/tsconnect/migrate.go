package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"tsconnect/control"
	"tsconnect/control/adminclient"
	"tsconnect/control/store/sqlitestore"
	"tsconnect/control/store/sqlstore"
	"tsconnect/control/store/storecopy"
)

func init() {
	var from, to string
	register(&command{name: "control migrate", usage: "--from DIR --to postgres://USER@HOST/DB",
		short: "move a stopped control server's network from SQLite to PostgreSQL",
		long: `Copies every row of DIR/control.db (users, keys, nodes, policy versions, the audit log,
sign-ins, API tokens, pending checks and logins, the server's keys) into the empty PostgreSQL
database --to, in one transaction that commits only once each table there holds exactly the
rows of the SQLite file. Control must be stopped; the SQLite file is left as it was. Then
start control with --store set to the same URL.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&from, "from", filepath.Join(defaultStateRoot(), "control"), "the control server's state directory (SQLite)")
			fs.StringVar(&to, "to", "", "the PostgreSQL database to move it to (postgres://…, empty)")
		},
		run: func(ctx context.Context, args []string) error {
			if err := wantArgs(args, 0, ""); err != nil {
				return err
			}
			return migrateStore(ctx, from, to)
		}})
}

func migrateStore(ctx context.Context, dir, to string) error {
	ac := adminclient.New(dir)
	_, err := ac.Me(ctx)
	ac.Close()
	if err == nil {
		return fmt.Errorf("control is running on %s: stop it first", dir)
	}
	path := filepath.Join(dir, control.DBFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	src, err := sqlitestore.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openPostgres(ctx, "--to", to)
	if err != nil {
		return err
	}
	defer dst.Close()
	counts, err := storecopy.Copy(ctx, src.DB(), dst.DB())
	if err != nil {
		return err
	}
	for _, t := range sqlstore.Tables {
		fmt.Printf("migrate: %s: %d rows\n", t, counts[t])
	}
	fmt.Println("migrate: done, every row verified; start control with --store and the same URL")
	return nil
}
