package wsconn

import "fmt"

// subprotocolError says the server at u did not agree to subprotocol.
func subprotocolError(u, subprotocol string) error {
	return fmt.Errorf("wsconn: the server at %s did not accept the WebSocket subprotocol %q", u, subprotocol)
}
