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
	if spec == "" {
		return nil, nil
	}
	st, err := openPostgres(ctx, "--store", spec)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openPostgres opens (and migrates) the PostgreSQL database at url, which flag named.
func openPostgres(ctx context.Context, flag, url string) (*pgstore.Store, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("%s: want a postgres:// URL", flag)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return pgstore.Open(ctx, url)
}
