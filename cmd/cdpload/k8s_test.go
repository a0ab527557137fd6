package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"cdpload/examples"
	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

// manifestDir holds the Kubernetes manifests of docs/production.md; every *.yaml in it is checked.
const manifestDir = "../../examples/k8s"

// drainMargin is the time a pod needs after the drain, to write the checkpoint and the
// summary, before the kubelet's SIGKILL.
const drainMargin = 5 * time.Second

// manifestKinds are the API types a manifest may use, by "apiVersion kind". Another kind
// is a failure: add its type here so that it is decoded strictly too.
var manifestKinds = map[string]func() any{
	"batch/v1 CronJob":         func() any { return &batchv1.CronJob{} },
	"batch/v1 Job":             func() any { return &batchv1.Job{} },
	"v1 Secret":                func() any { return &corev1.Secret{} },
	"v1 ConfigMap":             func() any { return &corev1.ConfigMap{} },
	"v1 PersistentVolumeClaim": func() any { return &corev1.PersistentVolumeClaim{} },
}

// manifest is one decoded document of a file in manifestDir.
type manifest struct {
	where string // file#document, e.g. cronjob.yaml#3
	obj   any    // one of the types of manifestKinds
}

// manifestSet is every manifest of manifestDir, and the objects pods refer to by name.
type manifestSet struct {
	all        []manifest
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
	claims     map[string]*corev1.PersistentVolumeClaim
}

// TestK8sManifests decodes every manifest strictly into the Kubernetes API types, then
// checks each container that runs cdpload against cdpload itself: its flags, environment
// variables, mounts and mapping, and the exit codes of its Job's podFailurePolicy. A CronJob
// must also be the nightly job docs/production.md describes (see checkCronJob).
func TestK8sManifests(t *testing.T) {
	set := loadManifests(t)
	cronJobs, indexedJobs := 0, 0
	for _, m := range set.all {
		switch obj := m.obj.(type) {
		case *batchv1.CronJob:
			cronJobs++
			where := m.where + " CronJob " + obj.Name
			t.Run(where, func(t *testing.T) {
				found := checkJob(t, set, &obj.Spec.JobTemplate.Spec)
				checkCronJob(t, obj, found)
			})
		case *batchv1.Job:
			t.Run(m.where+" Job "+obj.Name, func(t *testing.T) {
				found := checkJob(t, set, &obj.Spec)
				if indexed(&obj.Spec) {
					indexedJobs++
					checkIndexedJob(t, set, &obj.Spec, found)
				}
			})
		}
	}
	if cronJobs == 0 && !t.Failed() {
		t.Errorf("no CronJob in %s: the nightly job of docs/production.md is cronjob.yaml", manifestDir)
	}
	if indexedJobs == 0 && !t.Failed() {
		t.Errorf("no Indexed Job in %s: the sharded migration of docs/production.md is indexed-job.yaml", manifestDir)
	}
}

// indexed reports whether a Job's pods each get an index (JOB_COMPLETION_INDEX).
func indexed(job *batchv1.JobSpec) bool {
	return job.CompletionMode != nil && *job.CompletionMode == batchv1.IndexedCompletion
}

// checkIndexedJob checks a sharded load: one pod per shard, all running at once, each
// index retried on its own, every pod's cdpload taking its shard from its index, state
// files side by side on one volume that every pod can write, and the exit codes the Job
// fails on at once or retries (checkExitCodeRules).
func checkIndexedJob(t *testing.T, set *manifestSet, job *batchv1.JobSpec, found []cdploadContainer) {
	t.Helper()
	if job.Completions == nil || job.Parallelism == nil || *job.Completions != *job.Parallelism {
		t.Fatalf("completions and parallelism must both be the number of shards: every shard runs at once")
	}
	n := int(*job.Completions)
	if job.BackoffLimitPerIndex == nil {
		t.Errorf("no backoffLimitPerIndex: a shard that fails should be retried alone, without failing the others")
	}
	for _, cc := range found {
		o := cc.opts
		if o == nil || cc.cmd != "load" {
			continue
		}
		if o.shards != n || o.split.Count != n {
			t.Errorf("container %s: --shards %d (CDPLOAD_SHARDS) must be the Job's completions, %d, and take the index from JOB_COMPLETION_INDEX", cc.c.Name, o.shards, n)
		}
		if o.checkpoint != "" || o.rejects != "" {
			t.Errorf("container %s: --checkpoint or --rejects would be one path for every shard: leave the default names, which hold the shard", cc.c.Name)
		}
		if _, vol, _ := mountOf(&job.Template.Spec, cc.c, o.stateDir); vol != nil && vol.PersistentVolumeClaim != nil {
			claim := set.claims[vol.PersistentVolumeClaim.ClaimName]
			if claim != nil && !slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("container %s: the state volume %s must be ReadWriteMany: %d pods write to it at once, on any node", cc.c.Name, claim.Name, n)
			}
		}
	}
	for _, cc := range found {
		if cc.cmd == "load" {
			checkExitCodeRules(t, job.PodFailurePolicy, cc.c.Name)
		}
	}
	if job.PodFailurePolicy != nil {
		for _, r := range job.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailIndex && job.BackoffLimitPerIndex == nil {
				t.Errorf("podFailurePolicy: FailIndex needs backoffLimitPerIndex")
			}
		}
	}
}

// loadManifests reads every *.yaml of manifestDir, splits it into documents and decodes each
// strictly (unknown and duplicate fields are errors) into the type its kind names.
func loadManifests(t *testing.T) *manifestSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", manifestDir, err)
	}
	set := &manifestSet{
		secrets:    map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{},
		claims:     map[string]*corev1.PersistentVolumeClaim{},
	}
	docSep := regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			where := fmt.Sprintf("%s#%d", filepath.Base(file), i+1)
			if blankYAML(doc) {
				continue
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			newObj, ok := manifestKinds[meta.APIVersion+" "+meta.Kind]
			if !ok {
				t.Errorf("%s: apiVersion %q kind %q is not a kind this test decodes (add its API type to manifestKinds)", where, meta.APIVersion, meta.Kind)
				continue
			}
			obj := newObj()
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s: %v", where, meta.Kind, err)
				continue
			}
			set.all = append(set.all, manifest{where: where, obj: obj})
			switch o := obj.(type) {
			case *corev1.Secret:
				set.secrets[o.Name] = o
			case *corev1.ConfigMap:
				set.configMaps[o.Name] = o
			case *corev1.PersistentVolumeClaim:
				set.claims[o.Name] = o
			}
		}
	}
	return set
}

// blankYAML reports whether doc holds only comments and white space.
func blankYAML(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// cdploadContainer is a container of a pod template whose command line is a cdpload command.
type cdploadContainer struct {
	c    *corev1.Container
	cmd  string   // load or validate
	args []string // after the command
	opts *options // as cdpload parses args and the container's environment
}

// checkJob checks a Job's pod template and podFailurePolicy against cdpload, and returns
// the template's cdpload containers.
func checkJob(t *testing.T, set *manifestSet, job *batchv1.JobSpec) []cdploadContainer {
	t.Helper()
	pod := &job.Template.Spec
	var found []cdploadContainer
	for i := range pod.Containers {
		c := &pod.Containers[i]
		cmd, args, ok := cdploadCommand(c)
		if !ok {
			continue
		}
		cc := cdploadContainer{c: c, cmd: cmd, args: args}
		cc.opts = checkContainer(t, set, pod, cc, indexed(job))
		found = append(found, cc)
	}
	if len(found) == 0 {
		t.Fatalf("no container runs cdpload load or validate (args must start with the command; the image's ENTRYPOINT is /cdpload)")
	}

	grace := 30 * time.Second // Kubernetes' default
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	for _, cc := range found {
		if cc.opts == nil {
			continue
		}
		need := cc.opts.drainTimeout + drainMargin
		if cc.opts.pushgateway != "" {
			need += pushTimeout // the push at the end comes after the drain
		}
		if grace < need {
			t.Errorf("terminationGracePeriodSeconds %v leaves container %s no time after its --drain-timeout %v (and a push to --pushgateway, if set): give it at least %v",
				grace, cc.c.Name, cc.opts.drainTimeout, need)
		}
	}

	codes := exitCodes(t)
	if job.PodFailurePolicy != nil {
		for i, r := range job.PodFailurePolicy.Rules {
			if r.OnExitCodes == nil {
				continue
			}
			if n := r.OnExitCodes.ContainerName; n != nil && !slices.ContainsFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == *n }) {
				t.Errorf("podFailurePolicy rule %d: containerName %q is not a container of the pod", i+1, *n)
			}
			for _, v := range r.OnExitCodes.Values {
				if _, ok := codes[v]; !ok {
					t.Errorf("podFailurePolicy rule %d: exit code %d is not one cdpload uses (main.go: %v)", i+1, v, slices.Sorted(maps.Keys(codes)))
				}
			}
		}
	}
	return found
}

// checkCronJob checks what the nightly job of docs/production.md needs: one pod at a time, retries that
// resume from a checkpoint on a volume, the token from a mounted Secret, bounded resources,
// and an at-once failure on what a retry cannot fix.
func checkCronJob(t *testing.T, cj *batchv1.CronJob, found []cdploadContainer) {
	t.Helper()
	job := &cj.Spec.JobTemplate.Spec
	pod := &job.Template.Spec
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q: want Forbid, two loaders must not share a checkpoint", cj.Spec.ConcurrencyPolicy)
	}
	if job.BackoffLimit == nil {
		t.Errorf("no backoffLimit: say how often exit 1, 130 and 143 are retried")
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q: want Never (podFailurePolicy needs it)", pod.RestartPolicy)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.FSGroup == nil {
		t.Errorf("the pod's securityContext needs runAsNonRoot: true and an fsGroup (the image runs as 65532)")
	}

	var loads []cdploadContainer
	for _, cc := range found {
		if cc.cmd == "load" {
			loads = append(loads, cc)
		}
	}
	if len(loads) != 1 {
		t.Fatalf("%d containers run cdpload load; want one", len(loads))
	}
	cc := loads[0]
	c := cc.c
	for _, e := range c.Env {
		if e.Name == "CDP_TOKEN" {
			t.Errorf("container %s: CDP_TOKEN in the environment: mount the Secret as a file and give --token-file", c.Name)
		}
	}
	if o := cc.opts; o != nil {
		if o.tokenFile == "" {
			t.Errorf("container %s: no --token-file: the token comes from a Secret mounted as a file", c.Name)
		}
		if o.stateDir == "" {
			t.Errorf("container %s: no --state-dir on a PersistentVolumeClaim: a retried pod could not resume", c.Name)
		}
	}
	res := c.Resources
	for _, r := range []struct {
		what string
		list corev1.ResourceList
		name corev1.ResourceName
	}{
		{"requests", res.Requests, corev1.ResourceCPU},
		{"requests", res.Requests, corev1.ResourceMemory},
		{"limits", res.Limits, corev1.ResourceMemory},
	} {
		if q, ok := r.list[r.name]; !ok || q.IsZero() {
			t.Errorf("container %s: resources.%s.%s is not set", c.Name, r.what, r.name)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: securityContext.readOnlyRootFilesystem should be true: cdpload writes only to --state-dir", c.Name)
	}

	checkExitCodeRules(t, job.PodFailurePolicy, c.Name)
}

// checkExitCodeRules checks what a Job does when its cdpload container exits: exit 2
// (configuration), 4 (the token) and 5 (too many rejects: the data) fail the Job at once, by
// a FailJob rule naming the container, since a retry would fail alike or let more bad rows
// through; exit 1 (stopped early), 130 and 143 (interrupted) are retried, counted against
// the backoff limit, since the retry resumes from the checkpoint.
func checkExitCodeRules(t *testing.T, policy *batchv1.PodFailurePolicy, container string) {
	t.Helper()
	for _, code := range []int32{exitUsage, exitAuth, exitTooMany} {
		r := exitCodeRule(policy, container, code)
		if r == nil || r.Action != batchv1.PodFailurePolicyActionFailJob || r.OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn ||
			r.OnExitCodes.ContainerName == nil {
			t.Errorf("podFailurePolicy: no FailJob rule with onExitCodes {containerName: %s, operator: In} for exit %d (before any other rule that matches it)", container, code)
		}
	}
	for _, code := range []int32{exitStopped, exitInterrupt, exitTerminated} {
		if r := exitCodeRule(policy, container, code); r != nil && r.Action != batchv1.PodFailurePolicyActionCount {
			t.Errorf("podFailurePolicy: exit %d of container %s is %s; want it retried (no rule, or Count): the retry resumes", code, container, r.Action)
		}
	}
}

// exitCodeRule returns the podFailurePolicy rule that decides what happens when container
// exits with code, as the Job controller picks it: the first whose onExitCodes match; nil
// when none does, and the failure counts against the backoff limit.
func exitCodeRule(policy *batchv1.PodFailurePolicy, container string, code int32) *batchv1.PodFailurePolicyRule {
	if policy == nil {
		return nil
	}
	for i, r := range policy.Rules {
		oc := r.OnExitCodes
		if oc == nil || (oc.ContainerName != nil && *oc.ContainerName != container) {
			continue
		}
		in := slices.Contains(oc.Values, code)
		if (oc.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) || (oc.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in) {
			return &policy.Rules[i]
		}
	}
	return nil
}

// cdploadCommand returns the cdpload command and its arguments if c runs one: the image's
// ENTRYPOINT /cdpload with args, or a command naming cdpload.
func cdploadCommand(c *corev1.Container) (cmd string, args []string, ok bool) {
	argv := c.Args
	if len(c.Command) > 0 {
		if path.Base(c.Command[0]) != "cdpload" {
			return "", nil, false
		}
		argv = append(slices.Clone(c.Command[1:]), c.Args...)
	}
	if len(argv) == 0 || (argv[0] != "load" && argv[0] != "validate") {
		return "", nil, false
	}
	return argv[0], argv[1:], true
}

// containerEnv is the environment c sets with literal values. A value from a reference
// (valueFrom) is unknown here and reads as unset.
func containerEnv(c *corev1.Container) func(string) string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return func(k string) string { return m[k] }
}

// checkContainer checks one cdpload container: every flag exists, every environment variable
// is one cdpload reads, cdpload accepts the whole configuration, and the files it names are
// mounted from the right volumes. It returns the parsed options, or nil.
func checkContainer(t *testing.T, set *manifestSet, pod *corev1.PodSpec, cc cdploadContainer, indexed bool) *options {
	t.Helper()
	c := cc.c
	fs := newFlagSet(cc.cmd, &options{}, io.Discard)
	for i := 0; i < len(cc.args); i++ {
		a := cc.args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("container %s: %s is not a flag of cdpload %s", c.Name, a, cc.cmd)
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			i++ // the value is the next argument
		}
	}

	read := envRead(t, cc.cmd)
	for _, e := range c.Env {
		if !read[e.Name] {
			t.Errorf("container %s: cdpload %s reads no environment variable %s", c.Name, cc.cmd, e.Name)
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("container %s: envFrom hides the variables' names from this check; list them under env", c.Name)
	}

	env := containerEnv(c)
	if indexed { // the Job controller sets JOB_COMPLETION_INDEX in every pod of an Indexed Job
		env = func(k string) string {
			if k == "JOB_COMPLETION_INDEX" {
				return "0"
			}
			return containerEnv(c)(k)
		}
	}
	o, err := parseFlags(cc.cmd, cc.args, io.Discard, env)
	if err != nil {
		t.Errorf("container %s: cdpload %s refuses its configuration: %v", c.Name, cc.cmd, err)
		return nil
	}
	if o.tokenFile != "" {
		checkSecretFile(t, set, pod, c, "--token-file", o.tokenFile)
	}
	if o.stateDir != "" {
		checkStateDir(t, set, pod, c, o.stateDir)
	}
	if o.mapping != "" {
		checkMapping(t, set, pod, c, o)
	}
	return o
}

// envRead returns the names of the environment variables cdpload cmd reads: CDPLOAD_<FLAG>
// and CDP_BASE_URL as parseFlags asks for them, every Getenv("NAME") in the code the binary
// is built from, and the Go runtime's own.
func envRead(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	read := map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}
	record := func(k string) string { read[k] = true; return "" }
	parseFlags(cmd, nil, io.Discard, record) // asks for every flag's variable, then fails: no file
	(&options{}).readToken(record)
	for k := range sourceEnvNames(t) {
		read[k] = true
	}
	return read
}

// getenvCall finds a literal name passed to os.Getenv, os.LookupEnv or a getenv function.
var getenvCall = regexp.MustCompile(`(?i:getenv|lookupenv)\("([A-Z][A-Z0-9_]*)"\)`)

// sourceEnvNames returns the names read with a literal Getenv in the non-test Go files of the
// module that cdpload is built from (every package but the other commands).
func sourceEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, _ := filepath.Rel("../..", p)
			otherCmd := filepath.Dir(rel) == "cmd" && rel != filepath.Join("cmd", "cdpload")
			if otherCmd || d.Name() == "testdata" || (rel != "." && strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range getenvCall.FindAllSubmatch(data, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// exitCodes returns cdpload's exit codes: the exit* constants of main.go, by value.
func exitCodes(t *testing.T) map[int32]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[int32]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "exit") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Fatalf("main.go: %s is not an integer literal; teach exitCodes to read it", name.Name)
				}
				v, err := strconv.ParseInt(lit.Value, 0, 32)
				if err != nil {
					t.Fatal(err)
				}
				codes[int32(v)] = name.Name
			}
		}
	}
	for _, want := range []int32{exitOK, exitStopped, exitUsage, exitRejected, exitAuth, exitTooMany, exitInterrupt, exitTerminated} {
		if _, ok := codes[want]; !ok {
			t.Fatalf("exitCodes read %v from main.go, without %d", codes, want)
		}
	}
	return codes
}

// mountOf returns the mount of c that holds file and its volume, and file's path inside it.
func mountOf(pod *corev1.PodSpec, c *corev1.Container, file string) (*corev1.VolumeMount, *corev1.Volume, string) {
	var best *corev1.VolumeMount
	rel := ""
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		r, err := filepath.Rel(m.MountPath, file)
		if err != nil || r == ".." || strings.HasPrefix(r, "../") {
			continue
		}
		if best == nil || len(m.MountPath) > len(best.MountPath) {
			best, rel = m, r
		}
	}
	if best == nil {
		return nil, nil, ""
	}
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == best.Name {
			return best, &pod.Volumes[i], rel
		}
	}
	return best, nil, rel
}

// keyOf returns the key of a Secret or ConfigMap whose file rel is in a mount of it.
func keyOf(items []corev1.KeyToPath, rel string) (string, bool) {
	if len(items) == 0 {
		return rel, !strings.Contains(rel, "/") && rel != "."
	}
	for _, it := range items {
		if it.Path == rel {
			return it.Key, true
		}
	}
	return "", false
}

// checkSecretFile checks that file is a key of a Secret volume mounted into c.
func checkSecretFile(t *testing.T, set *manifestSet, pod *corev1.PodSpec, c *corev1.Container, flagName, file string) {
	t.Helper()
	_, vol, rel := mountOf(pod, c, file)
	if vol == nil || vol.Secret == nil {
		t.Errorf("container %s: %s %s is not in a mounted Secret volume", c.Name, flagName, file)
		return
	}
	key, ok := keyOf(vol.Secret.Items, rel)
	if !ok {
		t.Errorf("container %s: %s %s is not a key of Secret %s as mounted", c.Name, flagName, file, vol.Secret.SecretName)
		return
	}
	if s, defined := set.secrets[vol.Secret.SecretName]; defined {
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		if !inData && !inString {
			t.Errorf("container %s: %s %s: Secret %s has no key %q", c.Name, flagName, file, s.Name, key)
		}
	}
}

// checkStateDir checks that dir is on a writable PersistentVolumeClaim that a manifest
// defines, so that a retried pod finds the checkpoint and rejects of the one before.
func checkStateDir(t *testing.T, set *manifestSet, pod *corev1.PodSpec, c *corev1.Container, dir string) {
	t.Helper()
	m, vol, _ := mountOf(pod, c, dir)
	switch {
	case vol == nil || vol.PersistentVolumeClaim == nil:
		t.Errorf("container %s: --state-dir %s is not on a PersistentVolumeClaim: a retried pod would start over", c.Name, dir)
	case m.ReadOnly || vol.PersistentVolumeClaim.ReadOnly:
		t.Errorf("container %s: --state-dir %s is mounted read-only", c.Name, dir)
	case set.claims[vol.PersistentVolumeClaim.ClaimName] == nil:
		t.Errorf("container %s: --state-dir %s: no manifest in %s defines the PersistentVolumeClaim %s",
			c.Name, dir, manifestDir, vol.PersistentVolumeClaim.ClaimName)
	}
}

// checkMapping checks that --mapping is a key of a ConfigMap a manifest defines, that
// cdpload's parser accepts it, and, when the input is named like a file in examples/, that it
// maps that file's columns onto the example schema.
func checkMapping(t *testing.T, set *manifestSet, pod *corev1.PodSpec, c *corev1.Container, o *options) {
	t.Helper()
	_, vol, rel := mountOf(pod, c, o.mapping)
	if vol == nil || vol.ConfigMap == nil {
		t.Errorf("container %s: --mapping %s is not in a mounted ConfigMap volume", c.Name, o.mapping)
		return
	}
	key, ok := keyOf(vol.ConfigMap.Items, rel)
	cm := set.configMaps[vol.ConfigMap.Name]
	if !ok || cm == nil {
		t.Errorf("container %s: --mapping %s: no ConfigMap %s in %s with that key", c.Name, o.mapping, vol.ConfigMap.Name, manifestDir)
		return
	}
	text, ok := cm.Data[key]
	if !ok {
		t.Errorf("container %s: --mapping %s: ConfigMap %s has no key %q", c.Name, o.mapping, cm.Name, key)
		return
	}
	var m *mapper.Mapping
	var err error
	switch strings.ToLower(filepath.Ext(key)) {
	case ".yaml", ".yml":
		m, err = mapper.ParseYAML([]byte(text), key)
	case ".csv":
		m, err = mapper.ParseSheet(strings.NewReader(text), key)
	default:
		err = fmt.Errorf("unknown mapping format %q", filepath.Ext(key))
	}
	if err != nil {
		t.Errorf("ConfigMap %s, key %s: %v", cm.Name, key, err)
		return
	}

	schema, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range o.files {
		example := filepath.Join("../../examples", filepath.Base(in))
		format, compressed, err := source.DetectFormat(in)
		if o.format != "" {
			format, err = source.Format(o.format), nil
		}
		if err != nil || compressed {
			continue
		}
		var header []string
		if format != source.JSONL {
			if header, err = csvHeader(example, format); errors.Is(err, fs.ErrNotExist) {
				t.Logf("%s: no examples/%s to check the mapping against", c.Name, filepath.Base(in))
				continue
			} else if err != nil {
				t.Fatal(err)
			}
		}
		opts := mapper.Options{MatchKey: o.matchKey, Empty: o.empty, NullValue: o.nullValue}
		if _, err := mapper.New(schema, format, header, m, opts); err != nil {
			t.Errorf("ConfigMap %s, key %s, for %s (as examples/%s): %v", cm.Name, key, in, filepath.Base(in), err)
		}
	}
}

// csvHeader reads the first record of a CSV or TSV file.
func csvHeader(file string, format source.Format) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	if format == source.TSV {
		r.Comma = '\t'
	}
	return r.Read()
}
