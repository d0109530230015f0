// Command controlplane starts the API server tests' control plane (etcd
// and kube-apiserver from bin/tools, as fn/apiserver starts them) for
// tests that cannot link fn/apiserver: the Argo CD module (test/argocd)
// pins older Kubernetes libraries.
//
//	controlplane run -- CMD [ARG...]
//
// runs CMD in new network and PID namespaces (nothing but loopback; what
// CMD starts dies with it), with $ISTIO_GITOPS_CONTROL_PLANE naming this
// command.
//
//	controlplane serve DIR
//
// starts etcd and kube-apiserver, refusing outside such a namespace,
// writes DIR/kubeconfig (the admin's), and stops both (by PID) when its
// standard input closes or on SIGTERM.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/istio-gitops/istio-gitops/fn/apiserver"
)

// EnvControlPlane names this command in the environment of what `run`
// runs.
const EnvControlPlane = "ISTIO_GITOPS_CONTROL_PLANE"

func main() {
	ctrllog.SetLogger(logr.Discard())
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	const usage = "usage: controlplane run -- CMD [ARG...] | controlplane serve DIR"
	if len(args) < 2 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "run":
		cmd := args[1:]
		if cmd[0] == "--" {
			cmd = cmd[1:]
		}
		if len(cmd) == 0 {
			return fmt.Errorf("%s", usage)
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		if os.Getenv(apiserver.NetnsMarker) == "" {
			// Again, inside the namespaces.
			os.Exit(apiserver.RunPrivate(self, args...))
		}
		if err := apiserver.LoopbackUp(); err != nil {
			return err
		}
		os.Setenv(EnvControlPlane, self)
		// A name with a slash is taken as it is.
		path, err := exec.LookPath(cmd[0])
		if err != nil {
			return err
		}
		return syscall.Exec(path, cmd, os.Environ())
	case "serve":
		return serve(args[1])
	}
	return fmt.Errorf("%s", usage)
}

// serve starts a control plane, writes its kubeconfig into dir, and
// stops it when stdin closes or a signal comes.
func serve(dir string) (err error) {
	etcd, apiServer, err := apiserver.Binaries(filepath.Join(filepath.Dir(os.Args[0]), "tools"))
	if err != nil {
		return err
	}
	srv, err := apiserver.Start(etcd, apiServer)
	defer func() {
		if stopErr := srv.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop: %w", stopErr)
		}
	}()
	if err != nil {
		return err
	}
	c := srv.Config
	admin := &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	if err := apiserver.WriteKubeconfig(c, "admin", admin, "", filepath.Join(dir, "kubeconfig")); err != nil {
		return err
	}
	fmt.Printf("%s ready in %.1fs\n", srv.Version, srv.Started.Seconds())
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	}
	return nil
}
