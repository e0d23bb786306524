package storetest

import (
	"fmt"
	"testing"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// resolves checks that token resolves to sourceID/env, or, with sourceID
// "", that it resolves to nothing.
func resolves(tx engine.Tx, token, sourceID, env string) error {
	gotSrc, gotEnv, err := tx.ResolveIngestToken(token)
	if sourceID == "" {
		return checkNotFound(fmt.Sprintf("token %q", token), err)
	}
	if err != nil {
		return fmt.Errorf("token %q: %w", token, err)
	}
	if gotSrc != sourceID || gotEnv != env {
		return fmt.Errorf("token %q resolves to %s/%s, want %s/%s", token, gotSrc, gotEnv, sourceID, env)
	}
	return nil
}

// testIngestTokens: a token set resolves to its source environment, a
// replaced token stops resolving in the commit that replaces it, and
// DeleteSource takes the source's environments and tokens.
func testIngestTokens(t *testing.T, open opener) {
	s := open(t)
	check := func(tx engine.Tx, token, sourceID, env string) {
		t.Helper()
		if err := resolves(tx, token, sourceID, env); err != nil {
			t.Error(err)
		}
	}
	// Source "s" in two environments; source "s2" beside it.
	update(t, s, func(tx engine.Tx) error {
		for _, src := range []string{"s", "s2"} {
			if err := tx.PutSource(&harkv1.Source{Id: src, Type: "segment"}); err != nil {
				return err
			}
			for _, env := range []string{"dev", "prod"} {
				if err := tx.PutSourceEnvironment(&harkv1.SourceEnvironment{SourceId: src, Environment: env}); err != nil {
					return err
				}
				if err := tx.SetIngestToken(src, env, "tok_"+src+"_"+env+"_1"); err != nil {
					return err
				}
			}
		}
		check(tx, "tok_s_dev_1", "s", "dev") // in the Update that set it
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		check(tx, "tok_s_dev_1", "s", "dev")
		check(tx, "tok_s_prod_1", "s", "prod")
		check(tx, "tok_s2_dev_1", "s2", "dev")
		check(tx, "tok_unknown", "", "")
		return nil
	})

	// Rotation: the old token stops resolving in the same commit.
	update(t, s, func(tx engine.Tx) error {
		if err := tx.SetIngestToken("s", "dev", "tok_s_dev_2"); err != nil {
			return err
		}
		check(tx, "tok_s_dev_1", "", "")
		check(tx, "tok_s_dev_2", "s", "dev")
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		check(tx, "tok_s_dev_1", "", "")
		check(tx, "tok_s_dev_2", "s", "dev")
		check(tx, "tok_s_prod_1", "s", "prod")
		if tok, err := tx.IngestToken("s", "dev"); err != nil || tok != "tok_s_dev_2" {
			t.Errorf("IngestToken(s, dev) = %q, %v; want tok_s_dev_2", tok, err)
		}
		return nil
	})
	// Two rotations in one commit: only the last token resolves.
	update(t, s, func(tx engine.Tx) error {
		for _, tok := range []string{"tok_s_prod_2", "tok_s_prod_3"} {
			if err := tx.SetIngestToken("s", "prod", tok); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		check(tx, "tok_s_prod_1", "", "")
		check(tx, "tok_s_prod_2", "", "")
		check(tx, "tok_s_prod_3", "s", "prod")
		return nil
	})

	// DeleteSource takes the source's environments and tokens, not its
	// neighbour's.
	update(t, s, func(tx engine.Tx) error { return tx.DeleteSource("s") })
	view(t, s, func(tx engine.Tx) error {
		_, err := tx.Source("s")
		if err := checkNotFound("deleted source", err); err != nil {
			t.Error(err)
		}
		for _, env := range []string{"dev", "prod"} {
			_, err := tx.SourceEnvironment("s", env)
			if err := checkNotFound("deleted source's environment "+env, err); err != nil {
				t.Error(err)
			}
			_, err = tx.IngestToken("s", env)
			if err := checkNotFound("deleted source's token in "+env, err); err != nil {
				t.Error(err)
			}
		}
		ses, err := tx.SourceEnvironments("s")
		if err != nil {
			return err
		}
		if len(ses) != 0 {
			t.Errorf("deleted source still has environments %v", ses)
		}
		check(tx, "tok_s_dev_2", "", "")
		check(tx, "tok_s_prod_3", "", "")
		check(tx, "tok_s2_dev_1", "s2", "dev")
		check(tx, "tok_s2_prod_1", "s2", "prod")
		ses, err = tx.SourceEnvironments("s2")
		if err != nil {
			return err
		}
		if len(ses) != 2 || ses[0].GetEnvironment() != "dev" || ses[1].GetEnvironment() != "prod" {
			t.Errorf("the neighbour source's environments are %v, want dev and prod", ses)
		}
		return nil
	})
}
