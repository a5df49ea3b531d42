{{- define "postgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "postgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "postgate.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "postgate.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries; "component" is gateway or queue. */}}
{{- define "postgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: postgate
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "postgate.baseSelector" . }}
{{- end -}}

{{- define "postgate.baseSelector" -}}
app.kubernetes.io/name: {{ include "postgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "postgate.selector" -}}
{{ include "postgate.baseSelector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "postgate.image" -}}
{{- $image := index .root.Values.image .component -}}
{{- printf "%s/%s:%s" .root.Values.image.registry $image.repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{- define "postgate.adminSecret" -}}
{{- default (printf "%s-admin" (include "postgate.fullname" .)) .Values.adminToken.existingSecret -}}
{{- end -}}

{{- define "postgate.tlsSecret" -}}
{{- default (printf "%s-tls" (include "postgate.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "postgate.queueAddress" -}}
{{- printf "dns:///%s-queue-headless.%s.svc.%s:%d" (include "postgate.fullname" .) .Release.Namespace .Values.cluster.domain (int .Values.queue.grpcPort) -}}
{{- end -}}

{{/* "a.b.c.d/n" → "first last" as integers; "" for IPv6 or malformed entries. */}}
{{- define "postgate.ipv4Range" -}}
{{- $parts := splitList "/" (trimAll "[]" .) -}}
{{- if and (not (contains ":" .)) (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+(/[0-9]+)?$" .) -}}
{{- $octets := splitList "." (first $parts) -}}
{{- $address := add (mul (atoi (index $octets 0)) 16777216) (mul (atoi (index $octets 1)) 65536) (mul (atoi (index $octets 2)) 256) (atoi (index $octets 3)) -}}
{{- $prefix := 32 -}}
{{- if eq (len $parts) 2 }}{{ $prefix = atoi (index $parts 1) }}{{ end -}}
{{- $size := 1 -}}
{{- range until (int (sub 32 $prefix)) }}{{ $size = mul $size 2 }}{{ end -}}
{{- $start := mul (div $address $size) $size -}}
{{- printf "%d %d" $start (sub (add $start $size) 1) -}}
{{- end -}}
{{- end -}}

{{/*
The accidental open relay: clients behind the load balancer look like cluster addresses, so
mynetworks must not cover pod or node ranges unless the real client address reaches the gateway.
*/}}
{{- define "postgate.checkOpenRelay" -}}
{{- $preserved := or .Values.gateway.proxyProtocol.enabled (eq .Values.gateway.service.externalTrafficPolicy "Local") -}}
{{- if not $preserved -}}
{{- $cluster := concat .Values.cluster.podNetworks .Values.cluster.nodeNetworks -}}
{{- range $relay := regexSplit "[,\\s]+" (toString (index .Values.mainCf "mynetworks")) -1 -}}
{{- $r := include "postgate.ipv4Range" $relay -}}
{{- if $r -}}
{{- range $net := $cluster -}}
{{- $c := include "postgate.ipv4Range" $net -}}
{{- if $c -}}
{{- $a := splitList " " $r -}}{{- $b := splitList " " $c -}}
{{- if and (le (atoi (index $a 0)) (atoi (index $b 1))) (le (atoi (index $b 0)) (atoi (index $a 1))) -}}
{{- fail (printf "mainCf.mynetworks: %s overlaps the cluster range %s: behind the load balancer every client would look trusted and could relay. Enable gateway.proxyProtocol or set gateway.service.externalTrafficPolicy=Local, or remove it from mynetworks." $relay $net) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod and container security settings both workloads share. */}}
{{- define "postgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "postgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "postgate.topologySpread" -}}
{{- if .values.topologySpreadConstraints -}}
{{ toYaml .values.topologySpreadConstraints }}
{{- else -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
{{ include "postgate.selector" . | indent 6 }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
{{ include "postgate.selector" . | indent 6 }}
{{- end -}}
{{- end -}}
