{{/* Names and labels. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "herald.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "herald.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The config file herald gets: .Values.config without the chart-only
`resource` key of each watch (herald rejects unknown fields).
*/}}
{{- define "herald.configFile" -}}
{{- $config := omit .Values.config "watch" }}
{{- $watch := list }}
{{- range .Values.config.watch }}
{{- $watch = append $watch (omit . "resource") }}
{{- end }}
{{- $_ := set $config "watch" $watch }}
{{- if and (gt (int .Values.replicas) 1) (not (hasKey $config "ha")) }}
{{- $_ := set $config "ha" (dict "enabled" true "leaseName" (include "herald.fullname" .)) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* The API port, from config.api.listen (host:port). */}}
{{- define "herald.apiPort" -}}
{{- $listen := "" }}
{{- with .Values.config.api }}{{ $listen = .listen | toString }}{{ end }}
{{- if not $listen }}
{{- fail "config.api.listen must be set: the Service and the NetworkPolicy use herald's API port" }}
{{- end }}
{{- splitList ":" $listen | last | int }}
{{- end }}

{{/* The metrics and probe port, from config.metrics.listen (host:port). */}}
{{- define "herald.metricsPort" -}}
{{- $listen := "" }}
{{- with .Values.config.metrics }}{{ $listen = .listen | toString }}{{ end }}
{{- if not $listen }}
{{- fail "config.metrics.listen must be set: the probes and Prometheus use herald's metrics port" }}
{{- end }}
{{- splitList ":" $listen | last | int }}
{{- end }}

{{/* Whether the API asks the API server who may call it (config.api.auth). */}}
{{- define "herald.delegatedAuth" -}}
{{- $auth := "delegated" }}
{{- with .Values.config.api }}{{ with .auth }}{{ $auth = . }}{{ end }}{{ end }}
{{- if eq $auth "delegated" }}true{{ end }}
{{- end }}

{{/*
The plural resource name of a watch, for RBAC: its `resource` if set, else
its `kind` looked up among well-known kinds and short names, else guessed
the way Kubernetes guesses a CRD's plural (lower case; s -> ses, consonant+y
-> ies, else +s). A lower-case name that ends in "s" is taken as a plural.
*/}}
{{- define "herald.resource" -}}
{{- if .resource }}
{{- .resource }}
{{- else }}
{{- $k := lower .kind }}
{{- $known := dict
  "po" "pods" "pod" "pods"
  "deploy" "deployments" "deployment" "deployments"
  "rs" "replicasets" "replicaset" "replicasets"
  "sts" "statefulsets" "statefulset" "statefulsets"
  "ds" "daemonsets" "daemonset" "daemonsets"
  "job" "jobs" "cj" "cronjobs" "cronjob" "cronjobs"
  "cm" "configmaps" "configmap" "configmaps"
  "secret" "secrets"
  "svc" "services" "service" "services"
  "ep" "endpoints" "endpoints" "endpoints"
  "endpointslice" "endpointslices"
  "ing" "ingresses" "ingress" "ingresses" "ingressclass" "ingressclasses"
  "netpol" "networkpolicies" "networkpolicy" "networkpolicies"
  "ns" "namespaces" "namespace" "namespaces"
  "no" "nodes" "node" "nodes"
  "ev" "events" "event" "events"
  "sa" "serviceaccounts" "serviceaccount" "serviceaccounts"
  "pvc" "persistentvolumeclaims" "persistentvolumeclaim" "persistentvolumeclaims"
  "pv" "persistentvolumes" "persistentvolume" "persistentvolumes"
  "sc" "storageclasses" "storageclass" "storageclasses"
  "hpa" "horizontalpodautoscalers" "horizontalpodautoscaler" "horizontalpodautoscalers"
  "pdb" "poddisruptionbudgets" "poddisruptionbudget" "poddisruptionbudgets"
  "rc" "replicationcontrollers" "replicationcontroller" "replicationcontrollers"
  "quota" "resourcequotas" "resourcequota" "resourcequotas"
  "limits" "limitranges" "limitrange" "limitranges"
  "pc" "priorityclasses" "priorityclass" "priorityclasses"
  "crd" "customresourcedefinitions" "crds" "customresourcedefinitions" "customresourcedefinition" "customresourcedefinitions"
  "lease" "leases" "role" "roles" "rolebinding" "rolebindings"
  "clusterrole" "clusterroles" "clusterrolebinding" "clusterrolebindings"
}}
{{- if hasKey $known $k }}
{{- get $known $k }}
{{- else if and (eq $k .kind) (hasSuffix "s" $k) }}
{{- $k }}
{{- else if hasSuffix "s" $k }}
{{- printf "%ses" $k }}
{{- else if and (hasSuffix "y" $k) (not (regexMatch "[aeiou]y$" $k)) }}
{{- printf "%sies" (trimSuffix "y" $k) }}
{{- else }}
{{- printf "%ss" $k }}
{{- end }}
{{- end }}
{{- end }}

{{/* The API group of a watch for RBAC: "" for the core group. */}}
{{- define "herald.group" -}}
{{- $g := default "" .group }}
{{- if ne $g "core" }}{{ $g }}{{ end }}
{{- end }}

{{/*
The workload: a StatefulSet when several replicas each need a state volume
of their own (a ReadWriteOnce claim cannot be shared across nodes), else a
Deployment (with an existing claim, sharing it is the claim's business).
*/}}
{{- define "herald.statefulSet" -}}
{{- if and .Values.state.enabled (not .Values.state.existingClaim) (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

