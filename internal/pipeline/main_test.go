package pipeline_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Trees shared between tests live outside any one test's TempDir.
	if shared130.dir != "" {
		os.RemoveAll(shared130.dir)
	}
	os.Exit(code)
}
