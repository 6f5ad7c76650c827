package console

import (
	"io"
	"net/http"
	"strconv"
)

// backup streams a consistent copy of control's database (GET /backup, admin socket only).
// Content-Length is set, so a client can tell a cut-off copy from a whole one.
func (c *Console) backup(w http.ResponseWriter, r *http.Request, p *caller) {
	err := c.srv.Backup(r.Context(), func(rd io.Reader, size int64) error {
		w.Header().Set("Content-Type", "application/vnd.sqlite3")
		w.Header().Set("Content-Disposition", `attachment; filename="control-backup.db"`)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		_, err := io.Copy(w, rd)
		return err
	})
	if err != nil {
		c.logf("console: %s: backup: %v", p.name(), err)
		if w.Header().Get("Content-Length") == "" {
			writeError(w, http.StatusInternalServerError, codeInternal, "backup failed: "+err.Error())
		}
		return
	}
	c.logf("console: %s took a backup", p.name())
}
