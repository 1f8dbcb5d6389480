package konnektorsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/wire"
)

// stateFile holds PIN and Komfortsignatur state (PINs included: it is 0600 in a 0700 dir).
const stateFile = "konnektor-state.json"

// Card limits (trust-centre FAQs, ti.md §5.3).
const (
	pinTries = 3  // wrong PIN (or transport PIN) entries before the PIN blocks
	pukTries = 3  // wrong PUK entries before the PUK is unusable
	pukUses  = 10 // successful unblocks per card life
)

// pinState is the persisted state of one PIN.
type pinState struct {
	PIN       string `json:"pin"`
	PUK       string `json:"puk"`
	Transport bool   `json:"transport,omitempty"` // PIN is still the transport PIN
	Tries     int    `json:"tries"`               // wrong entries left
	PUKTries  int    `json:"pukTries"`            // wrong PUK entries left
	PUKUses   int    `json:"pukUses"`             // unblocks left
	Verified  bool   `json:"verified,omitempty"`
	// Dead: the transport PIN was blocked; nothing but a new card helps.
	Dead bool `json:"dead,omitempty"`
}

// status maps the state to GetPinStatus' answer.
func (p *pinState) status() (konnektor.PinState, int) {
	switch {
	case p.Dead || p.Tries == 0:
		return konnektor.PinBlocked, 0
	case p.Transport:
		return konnektor.PinTransportPIN, p.Tries
	case p.Verified:
		return konnektor.PinVerified, p.Tries
	default:
		return konnektor.PinVerifiable, p.Tries
	}
}

// comfortSession is one active Komfortsignatur (HBA + UserId).
type comfortSession struct {
	Handle    string    `json:"handle"`
	UserID    string    `json:"userId"`
	Remaining int       `json:"remaining"`
	Expires   time.Time `json:"expires"`
}

// persisted is the content of the state file.
type persisted struct {
	Version int                                        `json:"version"`
	PINs    map[string]map[konnektor.PinType]*pinState `json:"pins"` // by primary handle
	Comfort map[string]*comfortSession                 `json:"comfort"`
}

// store is the persisted state; callers hold Simulator.mu.
type store struct {
	path string
	data persisted
}

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("konnektorsim: no state directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("konnektorsim: %w", err)
	}
	st := &store{
		path: filepath.Join(dir, stateFile),
		data: persisted{Version: 1, PINs: map[string]map[konnektor.PinType]*pinState{}, Comfort: map[string]*comfortSession{}},
	}
	raw, err := os.ReadFile(st.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("konnektorsim: %w", err)
	default:
		if err := json.Unmarshal(raw, &st.data); err != nil {
			return nil, fmt.Errorf("konnektorsim: %s: %w", st.path, err)
		}
		if st.data.PINs == nil {
			st.data.PINs = map[string]map[konnektor.PinType]*pinState{}
		}
		if st.data.Comfort == nil {
			st.data.Comfort = map[string]*comfortSession{}
		}
	}
	return st, nil
}

// initPin creates the state of a PIN from its configuration unless a state exists.
func (st *store) initPin(handle string, pt konnektor.PinType, pc PinConfig) {
	m := st.data.PINs[handle]
	if m == nil {
		m = map[konnektor.PinType]*pinState{}
		st.data.PINs[handle] = m
	}
	if m[pt] != nil {
		return
	}
	ps := &pinState{PIN: pc.PIN, PUK: pc.PUK, Tries: pinTries, PUKTries: pukTries, PUKUses: pukUses, Verified: pc.Verified}
	if pc.TransportPIN != "" {
		ps.PIN, ps.Transport = pc.TransportPIN, true
	}
	m[pt] = ps
}

// pin returns the state of a configured PIN.
func (st *store) pin(handle string, pt konnektor.PinType) *pinState {
	return st.data.PINs[handle][pt]
}

func comfortKey(handle, userID string) string { return handle + "\x00" + userID }

func (st *store) comfort(handle, userID string) *comfortSession {
	return st.data.Comfort[comfortKey(handle, userID)]
}

func (st *store) setComfort(cs *comfortSession) {
	st.data.Comfort[comfortKey(cs.Handle, cs.UserID)] = cs
}

func (st *store) endComfort(handle, userID string) {
	delete(st.data.Comfort, comfortKey(handle, userID))
}

// comfortOf lists the sessions of a card, by UserId.
func (st *store) comfortOf(handle string) []*comfortSession {
	var out []*comfortSession
	for _, cs := range st.data.Comfort {
		if cs.Handle == handle {
			out = append(out, cs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// save writes the state atomically.
func (st *store) save() error {
	raw, err := json.MarshalIndent(st.data, "", "  ")
	if err != nil {
		return fmt.Errorf("konnektorsim: state: %w", err)
	}
	if err := wire.WriteFile(st.path, raw, 0o600); err != nil {
		return fmt.Errorf("konnektorsim: state: %w", err)
	}
	return nil
}
