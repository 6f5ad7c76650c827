package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"tsconnect/control/store"
)

// auditLog: events keep their SSH part, list after an ID oldest first from a time on, and
// the retention sweep deletes exactly those older than its cutoff.
func auditLog(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	ssh := json.RawMessage(`{"srcNode":2,"dstNode":3,"localUser":"root"}`)
	err := s.Update(ctx, func(tx store.Tx) error {
		for i := range 5 {
			e := store.AuthEvent{Time: t0.Add(time.Duration(i) * time.Hour), Method: "ssh", Kind: "ssh-accept", OK: true, Detail: "rule"}
			if i%2 == 1 {
				e.SSH = ssh
			}
			if err := tx.InsertAuthEvent(&e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all, after, since []store.AuthEvent
	s.Read(ctx, func(tx store.Tx) error {
		if all, err = tx.AuthEventsAfter(0, time.Time{}, 10); err != nil {
			t.Fatal(err)
		}
		if after, err = tx.AuthEventsAfter(all[1].ID, time.Time{}, 2); err != nil {
			t.Fatal(err)
		}
		if since, err = tx.AuthEventsAfter(0, t0.Add(3*time.Hour), 10); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	if len(all) != 5 || !all[0].Time.Equal(t0) || all[4].ID <= all[0].ID {
		t.Fatalf("all events oldest first: %+v", all)
	}
	if string(all[1].SSH) != string(ssh) || all[0].SSH != nil {
		t.Errorf("SSH parts: %s and %s, want %s and none", all[1].SSH, all[0].SSH, ssh)
	}
	if len(after) != 2 || after[0].ID != all[2].ID || after[1].ID != all[3].ID {
		t.Errorf("after the second, two: %+v", after)
	}
	if len(since) != 2 || since[0].ID != all[3].ID {
		t.Errorf("since 3 h: %+v", since)
	}
	var n int
	if err := s.Update(ctx, func(tx store.Tx) error {
		n, err = tx.DeleteAuthEventsBefore(t0.Add(2 * time.Hour))
		return err
	}); err != nil || n != 2 {
		t.Fatalf("retention deleted %d (%v), want 2", n, err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		left, err := tx.AuthEvents(0, 10)
		if err != nil || len(left) != 3 || !left[2].Time.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("left after retention: %+v %v", left, err)
		}
		return nil
	})
}
