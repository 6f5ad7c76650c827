package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"tsconnect/control/store"
	"tsconnect/control/store/pgstore"
)

// openStore opens the store that control's --store flag names: "" is nil (SQLite in the
// state directory), postgres://… or postgresql://… a PostgreSQL database.
func openStore(ctx context.Context, spec string) (store.Store, error) {
	switch {
	case spec == "":
		return nil, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return pgstore.Open(ctx, spec)
	default:
		return nil, fmt.Errorf("--store: want a postgres:// URL (or no --store for SQLite in --state)")
	}
}
