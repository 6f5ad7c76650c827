package control

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"tsconnect/derpws"
)

// RelayVerifyPath is where standalone relays (`tsconnect derp --verify-clients-url`) ask
// whether a node key may connect.
const RelayVerifyPath = "/ts/derp-verify"

// RelayVerifyHandler answers relays' admission questions (a POST of derpws.VerifyRequest,
// answered with derpws.VerifyResponse) with the same rule as the embedded relay: only keys of
// registered, logged-in nodes. It answers only relays that present secret as a bearer token;
// others get 401 and learn nothing. An empty secret refuses every request.
func (s *Server) RelayVerifyHandler(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a JSON VerifyRequest", http.StatusMethodNotAllowed)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if secret == "" || !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) != 1 {
			http.Error(w, "relay not authenticated: wrong or missing bearer secret", http.StatusUnauthorized)
			return
		}
		var req derpws.VerifyRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
			http.Error(w, "bad VerifyRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp := derpws.VerifyResponse{Allow: true}
		if err := s.verifyDERPClient(r.Context(), req.NodePublic); err != nil {
			resp = derpws.VerifyResponse{Allow: false, Reason: err.Error()}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
}
