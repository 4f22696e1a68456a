{{- define "gitlab-runner.fullname" -}}
{{- if hasPrefix .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 }}{{- end -}}
{{- end -}}
{{- define "gitlab-runner.labels" -}}
app: {{ include "gitlab-runner.fullname" . }}
chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
release: {{ .Release.Name | quote }}
heritage: {{ .Release.Service | quote }}
{{- end -}}
