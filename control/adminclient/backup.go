package adminclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Backup downloads a consistent copy of control's database (GET /backup; the admin socket
// only) into w and returns its size. A copy cut off before Content-Length is an error.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, "GET", "/backup", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, errorOf("GET", "/backup", resp, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("admin API: reading the backup: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("admin API: the backup was cut off at %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}
