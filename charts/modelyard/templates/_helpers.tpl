{{/* Names: with release "modelyard" the objects are modelyard-operator, modelyard-gateway, ... */}}
{{- define "modelyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelyard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "modelyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "modelyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "operator") */}}
{{- define "modelyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelyard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "modelyard.bindAddress" -}}
{{- if .Values.bindPodIP }}$(POD_IP){{ else }}0.0.0.0{{ end -}}
{{- end -}}

{{/* An image: repository@digest when a digest is given, else repository:tag (appVersion). */}}
{{- define "modelyard.imageRef" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .appVersion) -}}
{{- end -}}
{{- end -}}

{{- define "modelyard.image" -}}
{{- include "modelyard.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "modelyard.runtimeImage" -}}
{{- include "modelyard.imageRef" (dict "image" .Values.runtimeImage "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "modelyard.operator.fullname" -}}{{ include "modelyard.fullname" . }}-operator{{- end -}}
{{- define "modelyard.gateway.fullname" -}}{{ include "modelyard.fullname" . }}-gateway{{- end -}}
{{- define "modelyard.webhook.fullname" -}}{{ include "modelyard.fullname" . }}-webhook{{- end -}}
{{- define "modelyard.webhook.caSecret" -}}{{ include "modelyard.fullname" . }}-webhook-ca{{- end -}}
{{- define "modelyard.webhook.tlsSecret" -}}{{ include "modelyard.fullname" . }}-webhook-tls{{- end -}}
{{- define "modelyard.statusApi.fullname" -}}{{ include "modelyard.fullname" . }}-status-api{{- end -}}

{{- define "modelyard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "modelyard.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelyard.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create -}}
{{- default (include "modelyard.gateway.fullname" .) .Values.gateway.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.gateway.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The gateway's API-key Secret: the user's, or the one the chart makes. */}}
{{- define "modelyard.gateway.keysSecret" -}}
{{- default (printf "%s-keys" (include "modelyard.gateway.fullname" .)) .Values.gateway.auth.existingSecret -}}
{{- end -}}

{{- define "modelyard.statusApi.tokenSecret" -}}
{{- default (printf "%s-token" (include "modelyard.statusApi.fullname" .)) .Values.operator.statusApi.auth.existingSecret -}}
{{- end -}}

{{/* Env every modelyard pod gets: its own address and namespace, and where its service
account is mounted (the local node agent rewrites this path to the volume's directory), and a
writable scratch directory (an emptyDir: the root filesystem is read-only). Not mounted at /tmp:
the agent rewrites mount paths one after another, and a host directory under /tmp would be
rewritten twice. */}}
{{- define "modelyard.podEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
- name: MODELYARD_SERVICE_ACCOUNT_DIR
  value: /var/run/secrets/kubernetes.io/serviceaccount
- name: TMPDIR
  value: /scratch
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- end -}}
