package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/epasim"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
	"github.com/redclone/red/ti/simpki"
)

// tiOptions say where the TI services are: given URLs, or simulators red starts itself.
type tiOptions struct {
	konnektorURL, fachdienstURL, epaURL string
	konnektorConfig                     string
	timeout                             time.Duration
	simDir                              string // the simulators' state
	signedPDFDir                        string // where $signpdf may save signatures; "": nowhere
}

func (o *tiOptions) flags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.konnektorURL, "konnektor-url", "", "Konnektor base URL (connector.sds below it); default: a simulator on loopback")
	f.StringVar(&o.fachdienstURL, "fachdienst-url", "", "E-Rezept-Fachdienst base URL; default: a simulator on loopback")
	f.StringVar(&o.epaURL, "epa-url", "", "ePA base URL; default: a simulator on loopback")
	f.StringVar(&o.konnektorConfig, "konnektor-config", "", "card terminals and cards of the simulated Konnektor (JSON); default: the built-in cards")
	f.DurationVar(&o.timeout, "ti-timeout", telematik.DefaultTimeout, "longest wait for one TI call")
	f.StringVar(&o.signedPDFDir, "signed-pdf-dir", "", "directory in which $signpdf may save signatures (its filepath parameter); default: none, filepath is refused")
	o.simDirFlag(c)
}

func (o *tiOptions) simDirFlag(c *cobra.Command) {
	c.Flags().StringVar(&o.simDir, "ti-sim-dir", defaultTISimDir(), "state of the TI simulators (test data, kept apart from red's data directory)")
}

// simulated tells whether red starts a simulator for any of the services.
func (o *tiOptions) simulated() bool {
	return o.konnektorURL == "" || o.fachdienstURL == "" || o.epaURL == ""
}

// prepareTI checks where the TI actions and simulators write, before anything is started: the
// simulators' state directory and the directory for signed PDFs must lie apart from red's data
// directory. It opens the directory for signed PDFs (nil when there is none).
func (e *env) prepareTI(o tiOptions) (*telematik.SignedPDFs, error) {
	e.noticeOldTISim()
	if o.simulated() {
		if err := e.apartFromData("--ti-sim-dir", o.simDir); err != nil {
			return nil, err
		}
	}
	if o.signedPDFDir == "" {
		return nil, nil
	}
	if err := e.apartFromData("--signed-pdf-dir", o.signedPDFDir); err != nil {
		return nil, err
	}
	d, err := telematik.OpenSignedPDFs(o.signedPDFDir)
	if err != nil {
		return nil, fmt.Errorf("--signed-pdf-dir: %w (create the directory first)", err)
	}
	return d, nil
}

// simulators are TI simulators running on loopback ports.
type simulators struct {
	konnektor, fachdienst, epa string // base URLs; "" when not started
	servers                    []*http.Server

	// what the simulators know of insured persons: the eGKs in the simulated Konnektor's
	// terminals, the ePA records, and the Telematik-IDs of the Konnektor's SMC-Bs (which
	// decide whether this practice is entitled to a record)
	egks       []konnektorsim.CardConfig
	epaRecords []epasim.Record
	smcbIDs    map[string]bool
}

// insuredPerson is one KVNR the simulators know, and what they know of it.
type insuredPerson struct {
	kvnr     string
	facts    []string
	entitled bool // has an ePA this practice may use
}

// insured lists the KVNRs the simulators know, so that a user can try the TI actions on them:
// each eGK in a simulated terminal, each ePA record (entitled for this practice or not), and
// one KVNR without a record.
func (s *simulators) insured() []insuredPerson {
	var out []insuredPerson
	at := map[string]int{}
	add := func(kvnr, fact string) *insuredPerson {
		i, ok := at[kvnr]
		if !ok {
			i = len(out)
			at[kvnr] = i
			out = append(out, insuredPerson{kvnr: kvnr})
		}
		out[i].facts = append(out[i].facts, fact)
		return &out[i]
	}
	for _, c := range s.egks {
		add(c.Insured.Personal.KVNR, fmt.Sprintf("eGK %s in card terminal %s ($egkfetch)", c.Handle, c.CtID))
	}
	if s.epa == "" {
		return out
	}
	for _, r := range s.epaRecords {
		entitled := false
		for _, e := range r.Entitlements {
			entitled = entitled || s.smcbIDs[e.TelematikID]
		}
		if entitled {
			add(r.KVNR, "ePA, this practice is entitled ($getepastatus, $epaupload)").entitled = true
		} else {
			add(r.KVNR, "ePA, this practice is not entitled")
		}
	}
	if _, known := at[epasim.KVNRWithoutRecord]; !known {
		add(epasim.KVNRWithoutRecord, "no ePA (like every KVNR not listed here)")
	}
	return out
}

func (s *simulators) close() {
	for _, srv := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
	}
}

// serveLoopback serves h on 127.0.0.1:port and returns its base URL.
func (s *simulators) serveLoopback(h http.Handler, port int) (string, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "", err
	}
	srv := guard.SimulatorBounds.Server(h)
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(guard.SimulatorBounds.Listener(ln)) }()
	return "http://" + ln.Addr().String(), nil
}

// startSimulators starts the simulators for the services o does not point elsewhere, keeping
// their state (CA, PIN counters, Tasks, ePA documents) under dir. ports are the Konnektor,
// Fachdienst and ePA ports (0: any free one).
func startSimulators(dir string, o tiOptions, ports [3]int) (*simulators, error) {
	s := &simulators{}
	var pki *simpki.PKI
	needPKI := o.konnektorURL == "" || o.fachdienstURL == ""
	if needPKI {
		var err error
		if pki, err = simpki.Load(filepath.Join(dir, "pki")); err != nil {
			return nil, fmt.Errorf("simulator CA: %w", err)
		}
	}
	cfg := konnektorsim.DefaultConfig()
	if o.konnektorConfig != "" {
		var err error
		if cfg, err = konnektorsim.LoadConfig(o.konnektorConfig); err != nil {
			return nil, err
		}
	}
	var smcbs []string // Telematik-IDs of the simulated Konnektor's SMC-Bs, in order
	s.smcbIDs = map[string]bool{}
	for _, c := range cfg.Cards {
		if c.Type == konnektor.CardSMCB && c.TelematikID != "" {
			smcbs = append(smcbs, c.TelematikID)
			s.smcbIDs[c.TelematikID] = true
		}
	}
	if o.konnektorURL == "" {
		for _, c := range cfg.Cards {
			if c.Type == konnektor.CardEGK && c.Insured != nil {
				s.egks = append(s.egks, c)
			}
		}
		k, err := konnektorsim.New(cfg, pki, filepath.Join(dir, "konnektor"))
		if err != nil {
			return nil, fmt.Errorf("the Konnektor simulator: %w", err)
		}
		if s.konnektor, err = s.serveLoopback(k, ports[0]); err != nil {
			s.close()
			return nil, err
		}
	}
	if o.fachdienstURL == "" {
		f, err := fachdienstsim.New(fachdienstsim.Config{StateDir: filepath.Join(dir, "fachdienst"), Roots: pki.Pool()})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("the Fachdienst simulator: %w", err)
		}
		if s.fachdienst, err = s.serveLoopback(f, ports[1]); err != nil {
			s.close()
			return nil, err
		}
	}
	if o.epaURL == "" {
		ecfg := epasim.DefaultConfig(filepath.Join(dir, "epa"))
		ecfg.Records = epasim.DefaultRecords(time.Now())
		// the practices of the simulated Konnektor may use the records the default practice may
		for _, id := range smcbs {
			for i, r := range ecfg.Records {
				for _, e := range r.Entitlements {
					if e.TelematikID == epasim.DefaultTelematikID {
						ecfg.Records[i].Entitlements = append(ecfg.Records[i].Entitlements, epasim.Entitlement{TelematikID: id, ValidTo: e.ValidTo})
						break
					}
				}
			}
		}
		s.epaRecords = ecfg.Records
		e, err := epasim.New(ecfg)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("the ePA simulator: %w", err)
		}
		if s.epa, err = s.serveLoopback(e, ports[2]); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// telematikService builds the TI clients for the given or simulated services.
func telematikService(o tiOptions, sims *simulators, user string, patients telematik.Patients, signed *telematik.SignedPDFs) *telematik.Service {
	pick := func(url, sim string) string {
		if url != "" {
			return url
		}
		return sim
	}
	httpc := &http.Client{Timeout: o.timeout + 5*time.Second}
	return &telematik.Service{
		Konnektor: &konnektor.Client{BaseURL: pick(o.konnektorURL, sims.konnektor), HTTP: httpc,
			Context: konnektor.Context{MandantID: "Mandant1", ClientSystemID: "red", WorkplaceID: "AP1", UserID: user}},
		Fachdienst: &fachdienst.Client{BaseURL: pick(o.fachdienstURL, sims.fachdienst), HTTP: httpc},
		EPA:        &epa.Client{BaseURL: pick(o.epaURL, sims.epa), HTTP: httpc},
		Patients:   patients,
		Timeout:    o.timeout,
		SignedPDFs: signed,
	}
}

func (e *env) tiSimCmd() *cobra.Command {
	var o tiOptions
	var ports [3]int
	c := &cobra.Command{
		Use:   "ti-sim",
		Short: "run the Konnektor, E-Rezept-Fachdienst and ePA simulators on loopback",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := e.prepareTI(o); err != nil {
				return err
			}
			sims, err := startSimulators(o.simDir, o, ports)
			if err != nil {
				return err
			}
			defer sims.close()
			fmt.Fprintf(e.io.Out, "red: Konnektor simulator %s (connector.sds)\n", sims.konnektor)
			fmt.Fprintf(e.io.Out, "red: E-Rezept-Fachdienst simulator %s\n", sims.fachdienst)
			fmt.Fprintf(e.io.Out, "red: ePA simulator %s\n", sims.epa)
			<-cmd.Context().Done()
			return nil
		},
	}
	c.Flags().IntVar(&ports[0], "konnektor-port", 0, "port of the Konnektor simulator (0: any free one)")
	c.Flags().IntVar(&ports[1], "fachdienst-port", 0, "port of the Fachdienst simulator")
	c.Flags().IntVar(&ports[2], "epa-port", 0, "port of the ePA simulator")
	c.Flags().StringVar(&o.konnektorConfig, "konnektor-config", "", "card terminals and cards (JSON); default: the built-in cards")
	o.simDirFlag(c)
	return c
}
