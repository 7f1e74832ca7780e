package journaltest_test

import (
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/journaltest"
)

func TestMemoryContract(t *testing.T) {
	journaltest.Run(t, func(*testing.T) rollback.Journal { return journaltest.NewMemory() }, journaltest.Options{Unit: 20 * time.Millisecond})
}
