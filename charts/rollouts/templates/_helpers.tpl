{{/* The release's full name (63 characters at most). */}}
{{- define "rollouts.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollouts.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollouts.labels" -}}
{{ include "rollouts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rollouts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollouts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rollouts.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The permissions the controllers use, one rule per resource, verbs as used in the code
(src/controller, src/analysis, src/traffic, src/ops). No wildcards. `clusterScoped` adds what a
Role cannot grant (ClusterAnalysisTemplates).
*/}}
{{- define "rollouts.rules" -}}
# Rollouts: watched; the revision annotation is merge-patched; a Rollout gone from the cache
# is confirmed gone (get) before its Services are released.
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch, patch]
# Status is merge-patched with the resourceVersion as precondition.
- apiGroups: [argoproj.io]
  resources: [rollouts/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion on ReplicaSets, AnalysisRuns and canary Ingresses
# (and on Jobs, owned by AnalysisRuns) need this where OwnerReferencesPermissionEnforcement is on.
- apiGroups: [argoproj.io]
  resources: [rollouts/finalizers, analysisruns/finalizers, experiments/finalizers]
  verbs: [update]
# Experiments: watched; their status is merge-patched (no status subresource, as upstream);
# created, terminated and deleted (history) for canary `experiment` steps.
- apiGroups: [argoproj.io]
  resources: [experiments]
  verbs: [list, watch, patch, create, delete]
# AnalysisRuns: created for analysis steps, measured (status patched), deleted (TTL, history).
- apiGroups: [argoproj.io]
  resources: [analysisruns]
  verbs: [list, watch, create, patch, delete]
# Templates are read when a Rollout's analysis is started.
- apiGroups: [argoproj.io]
  resources: [analysistemplates]
  verbs: [get, list, watch]
{{- if .clusterScoped }}
- apiGroups: [argoproj.io]
  resources: [clusteranalysistemplates]
  verbs: [get, list, watch]
{{- end }}
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch, create, patch, delete]
# Services: the pod-template-hash selector and the managed-by annotation; an Experiment
# template's Service is created and deleted.
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
# Pods are listed only for spec.restartAt (restarted through the eviction API) and while a
# ReplicaSet's pods take the ephemeral metadata of a new role (patched in place).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, patch]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
# Adoption of upstream's ReplicaSets: a dry-run create gives the server-defaulted template.
# PodTemplates may also be named by a Rollout's workloadRef (watched once one is).
- apiGroups: [""]
  resources: [podtemplates]
  verbs: [list, watch, create]
# Deployments named by a workloadRef: their template is watched, and `scaleDown` scales them.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, patch]
# Analysis arguments from secretKeyRef (read at measurement time, never stored).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# The Job metric provider.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Traffic routers.
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [list, watch, patch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [list, watch, patch]
- apiGroups: [traefik.containo.us]
  resources: [traefikservices]
  verbs: [list, watch, patch]
{{- end -}}

{{- define "rollouts.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-dashboard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollouts.dashboardLabels" -}}
{{ include "rollouts.dashboardSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: dashboard
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
