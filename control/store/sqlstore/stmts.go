package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// MaxCachedStmts bounds how many distinct queries one Stmts keeps prepared; queries past it
// run unprepared, as they do before their statement is ready.
const MaxCachedStmts = 256

// Stmts keeps prepared statements of one *sql.DB so that a transaction runs its queries
// without parsing them again. A query is prepared in the background after the first
// transaction that used it has ended (Ended): preparing on the database while a transaction
// holds its only connection, as the SQLite writer's, would wait for that very connection.
type Stmts struct {
	db *sql.DB

	mu      sync.Mutex
	ready   map[string]*sql.Stmt
	wanted  map[string]bool
	running bool
	closed  bool
	done    sync.WaitGroup
}

// NewStmts returns an empty cache of statements prepared on db.
func NewStmts(db *sql.DB) *Stmts {
	return &Stmts{db: db, ready: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns the prepared statement of query, or nil when it is not prepared yet (then it
// is noted for preparing once the transaction ends).
func (c *Stmts) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.ready[query]; s != nil {
		return s
	}
	if !c.closed && len(c.ready)+len(c.wanted) < MaxCachedStmts {
		c.wanted[query] = true
	}
	return nil
}

// Ended tells the cache a transaction that used it has ended: the queries it ran unprepared
// are prepared now, in the background.
func (c *Stmts) Ended() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.closed || len(c.wanted) == 0 {
		return
	}
	c.running = true
	c.done.Add(1)
	go c.prepare()
}

func (c *Stmts) prepare() {
	defer c.done.Done()
	for {
		c.mu.Lock()
		var query string
		for q := range c.wanted {
			query = q
			break
		}
		if query == "" || c.closed {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		// A query that fails to prepare stays unprepared: running it reports its error.
		s, err := c.db.PrepareContext(context.Background(), query)
		c.mu.Lock()
		delete(c.wanted, query)
		if err == nil {
			if c.closed {
				s.Close()
			} else {
				c.ready[query] = s
			}
		}
		c.mu.Unlock()
	}
}

// Close waits for statements being prepared and closes them all; the database stays open.
func (c *Stmts) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.done.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.ready {
		errs = append(errs, s.Close())
		delete(c.ready, q)
	}
	return errors.Join(errs...)
}

// Prepared returns how many statements are prepared and ready.
func (c *Stmts) Prepared() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ready)
}
