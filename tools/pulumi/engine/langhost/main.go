// Command pulumi-language-python is yunshang's Python language host for the Pulumi engine.
//
// Upstream's language host module (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3)
// is not served by the Go module proxy this project builds from, so this small host implements
// the part of the LanguageRuntime protocol a Python program and a Python policy pack need, on the
// pinned sdk/v3 module's gRPC definitions:
//
//   - Run: starts upstream's pulumi-language-python-exec (shipped in sdk/v3, installed beside this
//     binary) under the project's Python, with the stack's config in PULUMI_CONFIG;
//   - RunPlugin: runs a Python plugin directory (a policy pack's __main__.py) under that Python,
//     streaming its output, which is how the engine starts a policy pack;
//   - GetRequiredPlugins/Packages: none; the providers a yunshang project uses are named in its
//     Pulumi.yaml (plugins.providers) and nothing is ever downloaded.
//
// Python: the "virtualenv" runtime option (relative to the project root) if given, else
// $PULUMI_PYTHON_CMD, else the python next to this binary (the project's .venv), else python3.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Version is set with -ldflags "-X main.Version=3.259.0" (the engine it is built with).
var Version = "0.0.0-dev"

// exitUserActionable is the code pulumi-language-python-exec uses after printing a message
// the user can act on (the engine then does not add its own error).
const exitUserActionable = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine string
}

func main() {
	args := os.Args[1:]
	var engine string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			engine = a
		}
	}
	h := &host{engine: engine}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (
	*pulumirpc.LanguageHandshakeResponse, error,
) {
	if req.EngineAddress != "" {
		h.engine = req.EngineAddress
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (
	*pulumirpc.GetRequiredPluginsResponse, error,
) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (
	*pulumirpc.GetRequiredPackagesResponse, error,
) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetProgramDependencies(context.Context, *pulumirpc.GetProgramDependenciesRequest) (
	*pulumirpc.GetProgramDependenciesResponse, error,
) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

// InstallDependencies does nothing: the project's own setup (make venv) installs them.
func (h *host) InstallDependencies(*pulumirpc.InstallDependenciesRequest,
	grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return nil
}

func (h *host) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	py := python(req.GetInfo())
	out, err := exec.Command(py, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s --version: %w", py, err)
	}
	return &pulumirpc.AboutResponse{Executable: py, Version: strings.TrimSpace(strings.TrimPrefix(string(out), "Python "))}, nil
}

// python picks the interpreter for a program (see the package comment).
func python(info *pulumirpc.ProgramInfo) string {
	if info != nil && info.Options != nil {
		if v, ok := info.Options.AsMap()["virtualenv"].(string); ok && v != "" {
			if !filepath.IsAbs(v) {
				v = filepath.Join(info.RootDirectory, v)
			}
			return filepath.Join(v, "bin", "python")
		}
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd
	}
	// Beside this binary as the engine started it (the venv's link), then beside its target.
	dirs := []string{filepath.Dir(os.Args[0])}
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "python"); isFile(p) {
			return p
		}
	}
	return "python3"
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// executor is upstream's pulumi-language-python-exec, installed beside this binary.
func executor() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if !isFile(p) {
		return "", fmt.Errorf("missing executor %s (install it beside pulumi-language-python)", p)
	}
	return p, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	execPath, err := executor()
	if err != nil {
		return nil, err
	}
	program := req.GetProgram()
	root := req.GetPwd()
	if info := req.GetInfo(); info != nil {
		root = info.RootDirectory
		program = info.ProgramDirectory
		if info.EntryPoint != "" && info.EntryPoint != "." {
			program = filepath.Join(info.ProgramDirectory, info.EntryPoint)
		}
	}
	if program == "" {
		program = "."
	}
	args := []string{"-u", execPath,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engine,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
		"--root_directory", root,
		program,
	}
	args = append(args, req.GetArgs()...)
	cfg, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	keys := req.GetConfigSecretKeys()
	if keys == nil {
		keys = []string{}
	}
	secretKeys, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python(req.GetInfo()), args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG="+string(cfg), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.ExitStatus() == exitUserActionable {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exit.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// RunPlugin runs a Python plugin (a policy pack directory with __main__.py) and streams its output.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest,
	server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	dir := req.GetPwd()
	if info := req.GetInfo(); info != nil && info.ProgramDirectory != "" {
		dir = info.ProgramDirectory
	}
	args := append([]string{"-u", dir}, req.GetArgs()...)
	cmd := exec.CommandContext(server.Context(), python(req.GetInfo()), args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = req.GetEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	send := make(chan *pulumirpc.RunPluginResponse)
	pump := func(r io.Reader, wrap func([]byte) *pulumirpc.RunPluginResponse) {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				send <- wrap(append([]byte(nil), buf[:n]...))
			}
			if err != nil {
				send <- nil
				return
			}
		}
	}
	go pump(stdout, func(b []byte) *pulumirpc.RunPluginResponse {
		return &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}}
	})
	go pump(stderr, func(b []byte) *pulumirpc.RunPluginResponse {
		return &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}}
	})
	for open := 2; open > 0; {
		msg := <-send
		if msg == nil {
			open--
			continue
		}
		if err := server.Send(msg); err != nil {
			return err
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return err
		}
		code = exit.ExitCode()
	}
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}})
}
