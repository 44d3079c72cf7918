{{/* Chart name, truncated to the 63 characters a label value may hold. */}}
{{- define "quantum-tunnel.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name of every object: the release name, plus the chart's unless it holds it. */}}
{{- define "quantum-tunnel.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "quantum-tunnel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quantum-tunnel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "quantum-tunnel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "quantum-tunnel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret with the private keys: required, named by the user. */}}
{{- define "quantum-tunnel.keysSecret" -}}
{{- required "keys.existingSecret: name the Secret that holds the private keys (kubectl create secret generic NAME --from-file=server.key)" .Values.keys.existingSecret }}
{{- end }}
