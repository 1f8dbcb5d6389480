package fachdienstsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redclone/red/ti/wire"
)

// The state directory holds one JSON file per Task and per Communication and one for the
// running number; every file is replaced atomically (wire.WriteFile), so a crash leaves either
// the old or the new version.
const (
	tasksDir    = "tasks"
	commsDir    = "communications"
	counterFile = "counter.json"
	signerFile  = "id-fd-sig.pem"
)

// taskRecord is everything the simulator keeps about a Task.
type taskRecord struct {
	ID               string           `json:"id"`
	FlowType         int              `json:"flowType"`
	Status           string           `json:"status"`
	AccessCode       string           `json:"accessCode,omitempty"`
	Secret           string           `json:"secret,omitempty"`
	KVNR             string           `json:"kvnr,omitempty"`
	KVNRSystem       string           `json:"kvnrSystem,omitempty"`
	Owner            string           `json:"owner,omitempty"`
	AuthoredOn       time.Time        `json:"authoredOn"`
	LastModified     time.Time        `json:"lastModified"`
	AcceptDate       string           `json:"acceptDate,omitempty"`
	ExpiryDate       string           `json:"expiryDate,omitempty"`
	MVOStart         string           `json:"mvoStart,omitempty"`
	MVOID            string           `json:"mvoId,omitempty"`
	LastDispense     *time.Time       `json:"lastMedicationDispense,omitempty"`
	AcceptedAt       time.Time        `json:"acceptedAt,omitzero"`
	PrescriptionUUID string           `json:"prescriptionUuid,omitempty"`
	ConfirmationUUID string           `json:"confirmationUuid,omitempty"`
	Signed           []byte           `json:"signed,omitempty"`  // the CMS as received at $activate
	Content          []byte           `json:"content,omitempty"` // the KBV bundle inside it
	Digest           []byte           `json:"digest,omitempty"`  // SHA-256 of Content
	Dispenses        []dispenseRecord `json:"dispenses,omitempty"`
	ReceiptUUID      string           `json:"receiptUuid,omitempty"`
	Receipt          []byte           `json:"receipt,omitempty"` // the signed receipt Bundle
}

// dispenseRecord is one stored MedicationDispense with its Medication.
type dispenseRecord struct {
	ID             string `json:"id"`
	KVNR           string `json:"kvnr"`
	WhenHandedOver string `json:"whenHandedOver"`
	XML            []byte `json:"xml"`
	MedicationID   string `json:"medicationId,omitempty"`
	Medication     []byte `json:"medication,omitempty"`
}

// commRecord is a stored Communication.
type commRecord struct {
	ID        string     `json:"id"`
	TaskID    string     `json:"taskId"`
	Sender    string     `json:"sender"`
	Recipient string     `json:"recipient"`
	Sent      time.Time  `json:"sent"`
	Received  *time.Time `json:"received,omitempty"`
	XML       []byte     `json:"xml"` // without sent/received, which are added when rendered
}

// counter is the running number of PrescriptionIds; numbers are never reused.
type counter struct {
	Next uint64 `json:"next"`
}

// store reads and writes the state directory.
type store struct{ dir string }

func openStore(dir string) (*store, error) {
	for _, d := range []string{dir, filepath.Join(dir, tasksDir), filepath.Join(dir, commsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("fachdienstsim: %w", err)
		}
	}
	return &store{dir: dir}, nil
}

func (s *store) saveTask(t *taskRecord) error {
	return s.writeJSON(filepath.Join(s.dir, tasksDir, t.ID+".json"), t)
}

func (s *store) saveComm(c *commRecord) error {
	return s.writeJSON(filepath.Join(s.dir, commsDir, c.ID+".json"), c)
}

func (s *store) deleteComm(id string) error {
	err := os.Remove(filepath.Join(s.dir, commsDir, id+".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("fachdienstsim: %w", err)
	}
	return syncDir(filepath.Join(s.dir, commsDir))
}

func (s *store) saveCounter(c counter) error {
	return s.writeJSON(filepath.Join(s.dir, counterFile), c)
}

// load reads the whole state.
func (s *store) load() (map[string]*taskRecord, map[string]*commRecord, counter, error) {
	var cnt counter
	tasks, err := readRecords(filepath.Join(s.dir, tasksDir), func(t *taskRecord) string { return t.ID })
	if err != nil {
		return nil, nil, cnt, err
	}
	comms, err := readRecords(filepath.Join(s.dir, commsDir), func(c *commRecord) string { return c.ID })
	if err != nil {
		return nil, nil, cnt, err
	}
	data, err := os.ReadFile(filepath.Join(s.dir, counterFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &cnt); err != nil {
			return nil, nil, cnt, fmt.Errorf("fachdienstsim: %s: %w", counterFile, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, nil, cnt, fmt.Errorf("fachdienstsim: %w", err)
	}
	return tasks, comms, cnt, nil
}

// readRecords reads the JSON record files of dir, by the id each holds.
func readRecords[T any](dir string, id func(*T) string) (map[string]*T, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	records := map[string]*T{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue // leftovers of an interrupted write are ignored
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("fachdienstsim: %w", err)
		}
		rec := new(T)
		if err := json.Unmarshal(data, rec); err != nil {
			return nil, fmt.Errorf("fachdienstsim: %s: %w", name, err)
		}
		records[id(rec)] = rec
	}
	return records, nil
}

func (s *store) writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("fachdienstsim: %w", err)
	}
	if err := wire.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("fachdienstsim: %w", err)
	}
	return nil
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fachdienstsim: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fachdienstsim: %w", err)
	}
	return nil
}
