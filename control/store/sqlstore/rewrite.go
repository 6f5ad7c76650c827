package sqlstore

import (
	"strconv"
	"strings"
	"sync"
)

// maxRewritten bounds the queries whose PostgreSQL rendering is kept (the store's queries
// are constants, or batches of at most a few hundred shapes); past it a query is
// rendered each time it runs.
const maxRewritten = 2048

// placeholderCache renders queries written with ? placeholders in PostgreSQL's ($1, $2, …),
// once per query: every statement of a transaction went through the rewrite.
type placeholderCache struct {
	mu   sync.RWMutex
	done map[string]string
}

// rewritten is the process's rendering cache (the rendering depends on the query only).
var rewritten placeholderCache

// render returns query with its ? placeholders numbered $1, $2, ….
func (p *placeholderCache) render(query string) string {
	p.mu.RLock()
	q, ok := p.done[query]
	p.mu.RUnlock()
	if ok {
		return q
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	q = b.String()
	p.mu.Lock()
	if p.done == nil {
		p.done = map[string]string{}
	}
	if len(p.done) < maxRewritten {
		p.done[query] = q
	}
	p.mu.Unlock()
	return q
}
