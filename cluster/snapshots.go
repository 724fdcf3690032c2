package cluster

import (
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/fsm"
)

// catchUpFromSnapshot restores the newest Raft snapshot into the FSM when
// the FSM is behind it. Raft itself is told not to restore on start (the FSM
// is persistent and records its applied index), but the FSM commits without
// fsync, so after a machine crash it may have lost entries that the log has
// since compacted into a snapshot.
func catchUpFromSnapshot(snaps raft.SnapshotStore, f *fsm.FSM) (bool, error) {
	list, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return false, nil
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return false, fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	idx, err := fsm.SnapshotIndex(rc)
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("read snapshot %s: %w", list[0].ID, err)
	}
	if idx <= f.AppliedIndex() {
		return false, nil
	}
	if _, rc, err = snaps.Open(list[0].ID); err != nil {
		return false, fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	if err := f.Restore(rc); err != nil {
		return false, fmt.Errorf("restore snapshot %s: %w", list[0].ID, err)
	}
	return true, nil
}
