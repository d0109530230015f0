package generate

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"

	"k8s.io/apimachinery/pkg/util/version"

	"github.com/istio-gitops/istio-gitops/internal/config"
	"github.com/istio-gitops/istio-gitops/internal/layout"
	"github.com/istio-gitops/istio-gitops/internal/state"
)

// unknown is what an istioctl built without a version stamp reports.
const unknown = "unknown"

// want is the Istio version a revision must be generated with.
type want struct {
	v *version.Version
	// text is the version as the config or record writes it, or
	// major.minor for one read from the revision's name.
	text string
	// from says where it was read, for messages.
	from string
	// patch: the patch must match too. A version read from the name has
	// none; one written in the config or the record names it.
	patch bool
	// field is the config field that moves the revision to another
	// version on purpose.
	field string
}

// nameVersion reads Istio's revision naming (1-31 for 1.31, 1-31-2 for
// 1.31.2): only major and minor are taken, as the name of a revision that
// is upgraded in place need not follow its patches.
var nameVersion = regexp.MustCompile(`^([0-9]+)-([0-9]+)(?:-|$)`)

// wanted is the version rev (spec.revisions[idx]) must be generated with:
// its version field, else the version its record keeps, else the one its
// name carries. A revision none of them gives is generated unchecked, with
// the warning returned.
func (t *tree) wanted(rev config.Revision, idx int) (*want, string) {
	field := fmt.Sprintf("spec.revisions[%d].version", idx)
	if rev.Version != "" {
		// The config's validation parsed it already.
		if v, err := version.ParseGeneric(rev.Version); err == nil {
			return &want{v: v, text: rev.Version, from: field, patch: len(v.Components()) > 2, field: field}, ""
		}
	}
	var warning string
	rec := path.Join(rev.Name, layout.Generated, layout.StateFile)
	if v, text, err := t.recorded(rec); err != nil {
		warning = fmt.Sprintf("%s: %v: the version it records was not read", t.rel(rec), err)
	} else if v != nil {
		return &want{v: v, text: text, from: "recorded in " + t.rel(rec), patch: len(v.Components()) > 2, field: field}, ""
	}
	if m := nameVersion.FindStringSubmatch(rev.Name); m != nil {
		major, err1 := strconv.ParseUint(m[1], 10, 0)
		minor, err2 := strconv.ParseUint(m[2], 10, 0)
		if err1 == nil && err2 == nil {
			v := version.MajorMinor(uint(major), uint(minor))
			return &want{v: v, text: v.String(), from: "from its name", field: field}, warning
		}
	}
	if warning != "" {
		warning += "; "
	}
	return nil, warning + fmt.Sprintf("revision %q names no Istio version (set %s to have the istioctl checked): the istioctl's version was not checked",
		rev.Name, field)
}

// recorded is the version the record at rec keeps (nil when there is no
// record or it keeps none).
func (t *tree) recorded(rec string) (*version.Version, string, error) {
	f := t.file(rec)
	if f == nil {
		return nil, "", nil
	}
	objs, err := f.Objects()
	if err != nil {
		return nil, "", err
	}
	for _, o := range objs {
		if !state.Is(o, state.Kind) {
			continue
		}
		st, err := state.Read(o)
		if err != nil {
			return nil, "", err
		}
		if st.Spec.Version == "" {
			return nil, "", nil
		}
		v, err := version.ParseGeneric(st.Spec.Version)
		if err != nil {
			return nil, "", fmt.Errorf("spec.version %q must be an Istio version", st.Spec.Version)
		}
		return v, st.Spec.Version, nil
	}
	return nil, "", nil
}

// check compares the istioctl's version (got, as it prints it) with the
// revision's. A known mismatch is an error that says both versions and
// the fix; a version that cannot be compared is a warning.
func check(ic Istioctl, rev string, w *want, got string) (string, error) {
	if w == nil {
		return "", nil
	}
	if got == "" || got == unknown {
		return fmt.Sprintf("istioctl %s reports its version as %q (a build from source without a version stamp): it was not checked against revision %q's Istio %s (%s); make sure it is an istioctl %s",
			ic, got, rev, w.text, w.from, w.text), nil
	}
	g, err := version.ParseGeneric(got)
	if err != nil {
		return fmt.Sprintf("istioctl %s reports version %q, which is not an Istio version: it was not checked against revision %q's Istio %s (%s)",
			ic, got, rev, w.text, w.from), nil
	}
	samePatch := !w.patch || len(g.Components()) < 3 || g.Patch() == w.v.Patch()
	if g.Major() == w.v.Major() && g.Minor() == w.v.Minor() && samePatch {
		return "", nil
	}
	msg := fmt.Sprintf("istioctl %s is Istio %s, but revision %q is Istio %s (%s): generating %s with a %d.%d istioctl would install %s under that name; the istioctl must be %s: give one with --istioctl PATH",
		ic, got, rev, w.text, w.from, rev, g.Major(), g.Minor(), got, w.text)
	if g.Major() == w.v.Major() && g.Minor() == w.v.Minor() {
		// A patch upgrade in place is legitimate, but it must be asked for.
		msg += fmt.Sprintf(", or, to move %s to %s on purpose, set %s: %s", rev, got, w.field, got)
	}
	return "", errors.New(msg)
}
