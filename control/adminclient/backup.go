package adminclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Backup downloads a consistent copy of control's database (GET /backup; the admin socket
// only) into w and returns its size. A copy cut off before Content-Length is an error.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return c.download(ctx, "/backup", "the backup", w)
}

// AuditExport writes the audit log as JSON lines (GET /audit/export), oldest first, from
// after event after (0: the oldest) and from since on (zero: any time), to w.
func (c *Client) AuditExport(ctx context.Context, after int64, since time.Time, w io.Writer) (int64, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", id(after))
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	path := "/audit/export"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.download(ctx, path, "the audit log", w)
}

// download copies the body of GET path (what it is, for errors) into w. A body cut off
// before its Content-Length is an error.
func (c *Client) download(ctx context.Context, path, what string, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, "GET", path, nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, errorOf("GET", path, resp, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("admin API: reading %s: %w", what, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("admin API: %s was cut off at %d of %d bytes", what, n, resp.ContentLength)
	}
	return n, nil
}
