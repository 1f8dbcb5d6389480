package epasim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/redclone/red/ti/wire"
)

// The state directory holds registry.json (metadata and granted entitlements) and one file per
// document under documents/. Every file is written to a temporary name, synced and renamed, so a
// crash leaves either the old or the new version. A document's file is written before the registry
// that names it.
const (
	registryFile = "registry.json"
	documentsDir = "documents"
	stateVersion = 1
)

// slot is an ebRIM Slot.
type slot struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// classification is an ebRIM Classification of a DocumentEntry (a code, or the author).
type classification struct {
	ID     string `json:"id"`
	Scheme string `json:"scheme"`
	Node   string `json:"node,omitempty"`
	Name   string `json:"name,omitempty"`
	Slots  []slot `json:"slots,omitempty"`
}

// entry is one registered DocumentEntry and where its document is.
type entry struct {
	EntryUUID        string           `json:"entryUUID"`
	UniqueID         string           `json:"uniqueId"`
	KVNR             string           `json:"kvnr"`
	PatientID        string           `json:"patientId"`
	MimeType         string           `json:"mimeType"`
	Status           string           `json:"status"` // Approved or Deprecated
	Title            string           `json:"title,omitempty"`
	TitleLang        string           `json:"titleLang,omitempty"`
	Comments         string           `json:"comments,omitempty"`
	CommentsLang     string           `json:"commentsLang,omitempty"`
	Slots            []slot           `json:"slots,omitempty"`
	Classifications  []classification `json:"classifications,omitempty"`
	PatientIDEIID    string           `json:"patientIdExternalIdentifierId"`
	UniqueIDEIID     string           `json:"uniqueIdExternalIdentifierId"`
	Size             int64            `json:"size"`
	Hash             string           `json:"hash"` // SHA-1, hex, as XDS has it
	RepositoryID     string           `json:"repositoryUniqueId"`
	HomeCommunityID  string           `json:"homeCommunityId"`
	SubmissionSetUID string           `json:"submissionSetUniqueId"`
	SubmittedAt      time.Time        `json:"submittedAt"`
	SubmittedBy      string           `json:"submittedBy"`
}

type grantedEntitlement struct {
	KVNR        string    `json:"kvnr"`
	TelematikID string    `json:"telematikId"`
	ValidTo     time.Time `json:"validTo"`
}

type registryState struct {
	Version      int                  `json:"version"`
	Entries      []*entry             `json:"entries"`
	Entitlements []grantedEntitlement `json:"entitlements,omitempty"`
}

// store is the simulator's registry and repository. Its methods are called with Simulator.mu held.
type store struct {
	dir     string            // "" keeps everything in memory
	state   registryState     // entries in submission order
	memDocs map[string][]byte // documents when dir is ""
}

func openStore(dir string) (*store, error) {
	st := &store{dir: dir, state: registryState{Version: stateVersion}, memDocs: map[string][]byte{}}
	if dir == "" {
		return st, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, documentsDir), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, registryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the registry: %w", err)
	}
	if err := json.Unmarshal(data, &st.state); err != nil {
		return nil, fmt.Errorf("the registry in the state directory is damaged: %w", err)
	}
	if st.state.Version != stateVersion {
		return nil, fmt.Errorf("the registry has version %d; this simulator reads version %d", st.state.Version, stateVersion)
	}
	return st, nil
}

func (st *store) byUniqueID(uid string) *entry {
	for _, e := range st.state.Entries {
		if e.UniqueID == uid {
			return e
		}
	}
	return nil
}

func (st *store) byEntryUUID(id string) *entry {
	for _, e := range st.state.Entries {
		if e.EntryUUID == id {
			return e
		}
	}
	return nil
}

func (st *store) entries() []*entry { return st.state.Entries }

func (st *store) entitlements(kvnr string) []Entitlement {
	var out []Entitlement
	for _, g := range st.state.Entitlements {
		if g.KVNR == kvnr {
			out = append(out, Entitlement{TelematikID: g.TelematikID, ValidTo: g.ValidTo})
		}
	}
	return out
}

// grant replaces the caller's granted entitlement for kvnr.
func (st *store) grant(kvnr string, e Entitlement) error {
	next := st.state
	next.Entitlements = nil
	for _, g := range st.state.Entitlements {
		if g.KVNR != kvnr || g.TelematikID != e.TelematikID {
			next.Entitlements = append(next.Entitlements, g)
		}
	}
	next.Entitlements = append(next.Entitlements, grantedEntitlement{KVNR: kvnr, TelematikID: e.TelematikID, ValidTo: e.ValidTo})
	return st.commit(next)
}

// register stores the documents of new entries, then the registry with the new entries added and
// the entries named in deprecate marked Deprecated. Nothing changes when it fails.
func (st *store) register(added []*entry, contents [][]byte, deprecate []string) error {
	for i, e := range added {
		if err := st.putDocument(e.EntryUUID, contents[i]); err != nil {
			return err
		}
	}
	next := st.state
	next.Entries = make([]*entry, 0, len(st.state.Entries)+len(added))
	for _, e := range st.state.Entries {
		for _, d := range deprecate {
			if e.EntryUUID == d {
				c := *e
				c.Status = statusDeprecated
				e = &c
			}
		}
		next.Entries = append(next.Entries, e)
	}
	next.Entries = append(next.Entries, added...)
	if err := st.commit(next); err != nil {
		for _, e := range added {
			st.dropDocument(e.EntryUUID)
		}
		return err
	}
	return nil
}

func (st *store) commit(next registryState) error {
	if st.dir != "" {
		data, err := json.MarshalIndent(next, "", " ")
		if err != nil {
			return err
		}
		if err := wire.WriteFile(filepath.Join(st.dir, registryFile), data, 0o600); err != nil {
			return err
		}
	}
	st.state = next
	return nil
}

// documentName is the file of a document: a hash of its entryUUID, so no id reaches a path.
func documentName(entryUUID string) string {
	sum := sha256.Sum256([]byte(entryUUID))
	return hex.EncodeToString(sum[:]) + ".bin"
}

func (st *store) putDocument(entryUUID string, content []byte) error {
	if st.dir == "" {
		st.memDocs[entryUUID] = append([]byte(nil), content...)
		return nil
	}
	return wire.WriteFile(filepath.Join(st.dir, documentsDir, documentName(entryUUID)), content, 0o600)
}

func (st *store) dropDocument(entryUUID string) {
	if st.dir == "" {
		delete(st.memDocs, entryUUID)
		return
	}
	_ = os.Remove(filepath.Join(st.dir, documentsDir, documentName(entryUUID)))
}

func (st *store) document(entryUUID string) ([]byte, error) {
	if st.dir == "" {
		c, ok := st.memDocs[entryUUID]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return c, nil
	}
	return os.ReadFile(filepath.Join(st.dir, documentsDir, documentName(entryUUID)))
}
