package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"tsconnect/control/store"
	"tsconnect/policy"
)

// Settings that keep the policy: every accepted version under policyVersionKey(n), and
// the number of the newest (the one in force) under settingPolicyLatest.
const (
	settingPolicyLatest = "policy_latest"
	policyFileName      = "policy.hujson"
)

func policyVersionKey(n int64) string { return "policy_v" + strconv.FormatInt(n, 10) }

// PolicyVersion is one accepted version of the policy file.
type PolicyVersion struct {
	// Version numbers accepted writes from 1; 0 is the built-in default policy.
	Version int64     `json:"version"`
	Author  string    `json:"author"` // who wrote it, e.g. "root via the admin socket"
	Created time.Time `json:"created,omitzero"`
	// Note says how it came to be, e.g. "restore of version 3".
	Note string `json:"note,omitempty"`
	Text string `json:"text,omitempty"`
}

// loadPolicy reads the policy in force from tx; no policy ever set is the default.
func loadPolicy(tx store.Tx) (*policy.Policy, PolicyVersion, error) {
	v, err := latestPolicyVersion(tx)
	if err != nil || v == 0 {
		return policy.Default(), PolicyVersion{Author: "built-in default", Text: policy.DefaultText}, err
	}
	pv, err := policyVersion(tx, v)
	if err != nil {
		return nil, pv, err
	}
	p, err := policy.Parse(policyFileName, []byte(pv.Text))
	if err != nil {
		// Only accepted texts are stored; a policy package change may reject an old one.
		return nil, pv, fmt.Errorf("stored policy version %d no longer parses: %w", v, err)
	}
	return p, pv, nil
}

func latestPolicyVersion(tx store.Tx) (int64, error) {
	s, err := tx.Setting(settingPolicyLatest)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

func policyVersion(tx store.Tx, n int64) (PolicyVersion, error) {
	if n == 0 {
		return PolicyVersion{Author: "built-in default", Text: policy.DefaultText}, nil
	}
	s, err := tx.Setting(policyVersionKey(n))
	if errors.Is(err, store.ErrNotFound) {
		return PolicyVersion{}, fmt.Errorf("control: no policy version %d: %w", n, ErrNotFound)
	}
	if err != nil {
		return PolicyVersion{}, err
	}
	var pv PolicyVersion
	if err := json.Unmarshal([]byte(s), &pv); err != nil {
		return pv, fmt.Errorf("stored policy version %d: %w", n, err)
	}
	return pv, nil
}

// Policy returns the policy version in force (version 0: the default, never set).
func (s *Server) Policy(ctx context.Context) (PolicyVersion, error) {
	s.mu.RLock()
	pv := s.policyVer
	s.mu.RUnlock()
	return pv, nil
}

// ValidatePolicy parses and tests text as SetPolicy would, without storing it. The error
// wraps ErrInvalid and lists every problem as file:line:col: field: message.
func ValidatePolicy(text []byte) (*policy.Policy, error) {
	p, err := policy.Parse(policyFileName, text)
	if err != nil {
		return nil, fmt.Errorf("control: policy refused, the one in force stays (%w):\n%w", ErrInvalid, err)
	}
	return p, nil
}

// SetPolicy replaces the policy in force with text, written by author. A text that does
// not parse or whose tests fail is refused (the error wraps ErrInvalid) and the old policy
// stays in force. Every node gets its new rules in a new map at once.
func (s *Server) SetPolicy(ctx context.Context, text []byte, author string) (PolicyVersion, error) {
	return s.writePolicy(ctx, text, author, "", AnyVersion)
}

// AnyVersion is the ifVersion of a policy write that does not depend on the version in force.
const AnyVersion = -1

// StaleVersionError refuses a policy write made against a version that is no longer in
// force; nothing was written.
type StaleVersionError struct {
	Current int64 // the version in force
	Want    int64 // the version the writer read
}

func (e *StaleVersionError) Error() string {
	return fmt.Sprintf("control: the policy in force is version %d, not %d: someone else changed it; read it again and redo the change", e.Current, e.Want)
}

// SetPolicyIf is SetPolicy made only while version ifVersion is in force (AnyVersion:
// whichever is): otherwise it writes nothing and returns a *StaleVersionError. The check and
// the write are one transaction, so of two writers that read the same version one wins.
func (s *Server) SetPolicyIf(ctx context.Context, text []byte, author string, ifVersion int64) (PolicyVersion, error) {
	return s.writePolicy(ctx, text, author, "", ifVersion)
}

func (s *Server) writePolicy(ctx context.Context, text []byte, author, note string, ifVersion int64) (PolicyVersion, error) {
	p, err := ValidatePolicy(text)
	if err != nil {
		return PolicyVersion{}, err
	}
	if strings.TrimSpace(author) == "" {
		author = "unknown"
	}
	pv := PolicyVersion{Author: author, Created: s.now().UTC(), Note: note, Text: string(text)}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.st.Update(ctx, func(tx store.Tx) error {
		n, err := latestPolicyVersion(tx)
		if err != nil {
			return err
		}
		if ifVersion != AnyVersion && n != ifVersion {
			return &StaleVersionError{Current: n, Want: ifVersion}
		}
		pv.Version = n + 1
		b, err := json.Marshal(pv)
		if err != nil {
			return err
		}
		if err := tx.SetSetting(policyVersionKey(pv.Version), string(b)); err != nil {
			return err
		}
		return tx.SetSetting(settingPolicyLatest, strconv.FormatInt(pv.Version, 10))
	})
	var stale *StaleVersionError
	if errors.As(err, &stale) {
		return PolicyVersion{}, stale
	}
	if err != nil {
		return PolicyVersion{}, fmt.Errorf("control: store policy: %w", err)
	}
	s.mu.Lock()
	s.policy, s.policyVer = p, pv
	s.gen++
	s.rc.invalidate()
	s.mu.Unlock()
	s.publishAll()
	s.logf("control: policy version %d in force (author %q%s)", pv.Version, author, noteSuffix(note))
	return pv, nil
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return ", " + note
}

// PolicyHistory lists every accepted policy version, oldest first, without their texts.
func (s *Server) PolicyHistory(ctx context.Context) ([]PolicyVersion, error) {
	var out []PolicyVersion
	err := s.st.Read(ctx, func(tx store.Tx) error {
		n, err := latestPolicyVersion(tx)
		if err != nil {
			return err
		}
		for i := int64(1); i <= n; i++ {
			pv, err := policyVersion(tx, i)
			if err != nil {
				return err
			}
			pv.Text = ""
			out = append(out, pv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control: policy history: %w", err)
	}
	return out, nil
}

// PolicyVersionText returns accepted version n with its text (0: the default policy).
func (s *Server) PolicyVersionText(ctx context.Context, n int64) (PolicyVersion, error) {
	var pv PolicyVersion
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		pv, err = policyVersion(tx, n)
		return err
	})
	return pv, err
}

// RestorePolicy puts version n (0: the default policy) back in force as a new version
// written by author. It is refused, leaving the policy as it is, if that text no longer
// passes (e.g. its tests now fail).
func (s *Server) RestorePolicy(ctx context.Context, n int64, author string) (PolicyVersion, error) {
	return s.RestorePolicyIf(ctx, n, author, AnyVersion)
}

// RestorePolicyIf is RestorePolicy made only while version ifVersion is in force (see SetPolicyIf).
func (s *Server) RestorePolicyIf(ctx context.Context, n int64, author string, ifVersion int64) (PolicyVersion, error) {
	old, err := s.PolicyVersionText(ctx, n)
	if err != nil {
		return PolicyVersion{}, err
	}
	return s.writePolicy(ctx, []byte(old.Text), author, fmt.Sprintf("restore of version %d", n), ifVersion)
}

// canApplyTags reports, as an error wrapping ErrInvalid, a tag that user may not apply:
// admins apply any tag, others only tags the policy's tagOwners give them (directly or
// through their groups, identity-provider groups included).
func (s *Server) canApplyTags(u store.User, tags []string) error {
	if Role(u.Role) == RoleAdmin {
		return nil
	}
	s.mu.RLock()
	p := s.policy
	s.mu.RUnlock()
	for _, t := range tags {
		if !p.CanApplyTagWithGroups(u.Email, u.Groups, t) {
			return fmt.Errorf("control: user %s may not apply %s: not an owner of it in the policy's tagOwners, and not an admin: %w", u.Email, t, ErrInvalid)
		}
	}
	return nil
}
