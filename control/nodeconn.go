package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/internal/safetext"
	"tsconnect/key"
)

// envConn is the server side of one control connection, as controlws provides it.
type envConn interface {
	ReadEnvelope() (*controlws.Envelope, error)
	WriteEnvelope(*controlws.Envelope) error // safe for concurrent use
	PeerKey() key.Public
	// Version is the protocol version the handshake negotiated (controlws.MinVersion to
	// controlws.Version); the handlers serve each version's message forms.
	Version() int
	Close() error
}

// nodeConn serves one node's control connection: requests in order, a map stream beside them.
type nodeConn struct {
	s       *Server
	conn    envConn
	machine key.Public
	version int          // the connection's protocol version, as negotiated
	source  string       // the client's address as per-address limits count it (sourceKey)
	nodeID  atomic.Int64 // the node this connection acts for, once known
	// deletedOnLogout is set by a logout of an ephemeral node (read goroutine only).
	deletedOnLogout bool

	closeOnce sync.Once
	watchSSH  sync.Once     // sshsessions.go: forget the node's SSH logins when the connection ends
	done      chan struct{} // closed by close
	streamMu  sync.Mutex
	stream    *stream
	wg        sync.WaitGroup
}

// serveConn runs a control connection until the connection ends or the server closes.
func (s *Server) serveConn(c envConn, source string) {
	nc := &nodeConn{s: s, conn: c, version: c.Version(), source: source, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	nc.serve()
	nc.close()
	nc.wg.Wait()
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// close ends the connection; serve returns soon after.
func (nc *nodeConn) close() {
	nc.closeOnce.Do(func() {
		close(nc.done)
		nc.conn.Close()
	})
}

// closeWith tells the client why, on its map stream if it has one, then closes.
func (nc *nodeConn) closeWith(e *controlws.Error) {
	nc.streamMu.Lock()
	var id uint64
	if nc.stream != nil {
		id = nc.stream.reqID
	}
	nc.streamMu.Unlock()
	nc.reply(id, controlws.TypeError, e)
	nc.close()
}

func (nc *nodeConn) reply(id uint64, typ string, body any) error {
	var raw json.RawMessage
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return nc.conn.WriteEnvelope(&controlws.Envelope{V: nc.version, Type: typ, ID: id, Body: raw})
}

func (nc *nodeConn) serve() {
	for {
		env, err := nc.conn.ReadEnvelope()
		if err != nil {
			return
		}
		if nc.machine.IsZero() {
			// The transport authenticated the peer once its first message decrypted.
			nc.machine = nc.conn.PeerKey()
		}
		resp, body, err := nc.handle(env)
		if err != nil {
			var ce *controlws.Error
			if !errors.As(err, &ce) {
				nc.s.logf("control: machine %s: %s: %s", nc.machine.ShortString(), safetext.Bounded(env.Type, 64), safetext.Bounded(err.Error(), 512))
				ce = errf(controlws.CodeInternal, "%s failed on the server", env.Type)
			}
			resp, body = controlws.TypeError, ce
		}
		if resp == "" {
			continue
		}
		if err := nc.reply(env.ID, resp, body); err != nil {
			return
		}
		if env.Type == controlws.TypeLogout && resp == controlws.TypeOK {
			// End the map stream with the reason, then the connection.
			if nc.deletedOnLogout {
				nc.closeWith(errf(controlws.CodeNodeDeleted, "ephemeral node deleted on logout"))
			} else {
				nc.closeWith(errf(controlws.CodeNotRegistered, "logged out: register with a new auth key"))
			}
			return
		}
	}
}

// handle serves one request; resp "" means nothing to send now.
func (nc *nodeConn) handle(env *controlws.Envelope) (resp string, body any, err error) {
	if env.V != nc.version {
		return "", nil, errf(controlws.CodeUnsupportedVer, "protocol version %d not supported on this connection, which negotiated version %d", env.V, nc.version)
	}
	ctx := nc.s.ctx
	switch env.Type {
	case controlws.TypeRegister:
		var req controlws.RegisterRequest
		if err := json.Unmarshal(env.Body, &req); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "register: %v", err)
		}
		if err := req.Hostinfo.Validate(); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "register: %v", err)
		}
		if len(req.AuthKey) > controlws.MaxAuthKeyLen {
			return "", nil, errf(controlws.CodeInvalidKey, "register: auth key of %d bytes, over the limit of %d", len(req.AuthKey), controlws.MaxAuthKeyLen)
		}
		if req.Interactive && req.AuthKey == "" {
			return nc.registerInteractive(env, &req)
		}
		r, err := nc.s.register(ctx, nc.machine, &req)
		if err != nil {
			return "", nil, err
		}
		nc.nodeID.Store(r.Node.ID)
		return controlws.TypeRegisterResponse, r, nil
	case controlws.TypeMapRequest:
		var req controlws.MapRequest
		if err := json.Unmarshal(env.Body, &req); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "mapRequest: %v", err)
		}
		if err := req.Hostinfo.Validate(); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "mapRequest: %v", err)
		}
		return "", nil, nc.startStream(ctx, env.ID, &req)
	case controlws.TypeUpdate:
		var u controlws.Update
		if err := json.Unmarshal(env.Body, &u); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "update: %v", err)
		}
		if err := u.Hostinfo.Validate(); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "update: %v", err)
		}
		id := nc.nodeID.Load()
		if id == 0 {
			return "", nil, errf(controlws.CodeNotRegistered, "update before register or mapRequest on this connection")
		}
		if !nc.s.updates.allow(id) {
			return "", nil, errf(controlws.CodeTooMany, "update: more than %d host-info updates at once, then %d a second: the last one stays in force", UpdateBurst, UpdateRate)
		}
		if err := nc.s.updateHostinfo(ctx, id, u.Hostinfo); err != nil {
			return "", nil, err
		}
		return controlws.TypeOK, nil, nil
	case controlws.TypeLogout:
		n, err := nc.s.logout(ctx, nc.machine)
		if err != nil {
			return "", nil, err
		}
		nc.deletedOnLogout = n.Ephemeral
		return controlws.TypeOK, nil, nil
	case controlws.TypeSSHCheck:
		var req controlws.SSHCheckRequest
		if err := json.Unmarshal(env.Body, &req); err != nil {
			return "", nil, errf(controlws.CodeBadRequest, "sshCheck: %v", err)
		}
		return nc.sshCheck(env, &req)
	case controlws.TypeSSHCheckCancel:
		nc.cancelCheck(env.ID)
		return "", nil, nil
	case controlws.TypeSSHSessions:
		return nc.sshSessions(env)
	case controlws.TypeRecordingViewer:
		return nc.recordingViewer(ctx, env)
	case controlws.TypeSSHAudit:
		if nc.version >= controlws.VersionRecording {
			return nc.sshAudit(ctx, env)
		}
	}
	return "", nil, errf(controlws.CodeBadRequest, "unknown message type %s", safetext.Bounded(strconv.Quote(env.Type), 64))
}

// startStream checks that the machine's node holds req.NodeKey and starts its map stream.
func (nc *nodeConn) startStream(ctx context.Context, reqID uint64, req *controlws.MapRequest) error {
	nc.streamMu.Lock()
	running := nc.stream != nil
	nc.streamMu.Unlock()
	if running {
		return errf(controlws.CodeBadRequest, "a map stream already runs on this connection")
	}
	st, err := nc.s.openStream(ctx, nc, reqID, req)
	if err != nil {
		return err
	}
	nc.streamMu.Lock()
	nc.stream = st
	nc.streamMu.Unlock()
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		err := st.run(nc.done)
		if err != nil {
			nc.close()
		}
		nc.s.closeStream(st)
	}()
	return nil
}

// closeStream unregisters a finished stream; the node is offline when it was its last.
func (s *Server) closeStream(st *stream) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	sts := s.streams[st.nodeID]
	delete(sts, st)
	offline := len(sts) == 0
	if offline {
		delete(s.streams, st.nodeID)
		s.onlineChanged(st.nodeID)
	}
	ln, live := s.nodes[st.nodeID]
	now := s.now().UTC()
	if offline && live {
		ln.n.LastSeen = now
	}
	// A replica that stops announces its nodes gone together, at the end (presence.go).
	batched := offline && live && s.closed && s.origin != ""
	if batched {
		s.stopGone = append(s.stopGone, st.nodeID)
	}
	s.mu.Unlock()
	if !offline || !live {
		return
	}
	if batched {
		s.publishChanged(st.nodeID)
		return
	}
	err := s.st.Update(context.Background(), func(tx store.Tx) error {
		noteOnline(tx, st.nodeID, false)
		return tx.SetLastSeen(st.nodeID, now)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.logf("control: node %d: last seen: %v", st.nodeID, err)
	}
	s.publishChanged(st.nodeID)
}

// updateHostinfo stores what a node reports about itself and tells its peers.
func (s *Server) updateHostinfo(ctx context.Context, id int64, hi controlws.Hostinfo) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var n store.Node
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.NodeByID(id)
		if err != nil {
			return err
		}
		if !n.Deleted.IsZero() {
			return errf(controlws.CodeNodeDeleted, "this node was deleted")
		}
		n.Hostinfo = marshalHostinfo(hi)
		return tx.UpdateNode(&n)
	})
	if err != nil {
		return fmt.Errorf("update hostinfo of node %d: %w", id, err)
	}
	s.mu.Lock()
	s.cacheNode(n)
	s.mu.Unlock()
	s.publishChanged(id)
	return nil
}

// logout logs out machine's node: an ephemeral node is deleted at once, any other is
// marked logged out (it leaves its peers' maps and must register again with a new key).
func (s *Server) logout(ctx context.Context, machine key.Public) (store.Node, error) {
	s.writeMu.Lock()
	var n store.Node
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.NodeByMachineKey(machine)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && !n.Deleted.IsZero()):
			return errf(controlws.CodeNotRegistered, "this machine has no node")
		case err != nil:
			return err
		case n.Ephemeral:
			return tx.PurgeNode(n.ID)
		}
		n.LoggedOut = true
		return tx.UpdateNode(&n)
	})
	if err != nil {
		s.writeMu.Unlock()
		return n, err
	}
	if n.Ephemeral {
		s.forgetNode(n.ID) // its own control connections end as the client leaves
	} else {
		s.mu.Lock()
		s.cacheNode(n)
		s.mu.Unlock()
		s.publishChanged(n.ID)
	}
	s.writeMu.Unlock()
	if s.relay != nil {
		s.relay.ClosePeer(n.NodeKey)
	}
	s.logf("control: node %d %s logged out (ephemeral=%v)", n.ID, n.Name, n.Ephemeral)
	return n, nil
}
