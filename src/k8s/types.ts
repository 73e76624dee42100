/**
 * The Kubernetes objects the k8s backend writes, typed with only the fields it uses (the
 * official schemas are the reference: the unit tests validate every object against them).
 * Plain data, so they serialize as they are for `kubectl apply` or a client library.
 */

export type Labels = Record<string, string>;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Labels;
  annotations?: Record<string, string>;
}

export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: ObjectMeta;
  data: Record<string, string>;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: { fieldPath: string } };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export interface ExecProbe {
  exec: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: 'Never' | 'IfNotPresent' | 'Always';
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number; protocol: 'UDP' | 'TCP' }[];
  resources?: ResourceRequirements;
  securityContext?: { privileged?: boolean };
  volumeMounts?: VolumeMount[];
  readinessProbe?: ExecProbe;
}

export type HostPathType = 'CharDevice' | 'Directory' | 'File';

export type Volume = { name: string } & (
  | { emptyDir: { sizeLimit?: string } }
  | { configMap: { name: string; items?: { key: string; path: string }[] } }
  | { hostPath: { path: string; type: HostPathType } }
  | { persistentVolumeClaim: { claimName: string; readOnly?: boolean } }
  /** An OCI image as a volume (Kubernetes 1.31+, feature gate ImageVolume). */
  | { image: { reference: string; pullPolicy?: 'Never' | 'IfNotPresent' | 'Always' } }
);

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In';
  values: string[];
}

export interface WeightedPodAffinityTerm {
  weight: number;
  podAffinityTerm: { labelSelector: { matchExpressions: LabelSelectorRequirement[] }; topologyKey: string };
}

export interface Affinity {
  podAffinity?: { preferredDuringSchedulingIgnoredDuringExecution: WeightedPodAffinityTerm[] };
  podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution: WeightedPodAffinityTerm[] };
  nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: { matchExpressions: LabelSelectorRequirement[] }[] } };
}

export interface PodSpec {
  restartPolicy: 'Never';
  enableServiceLinks?: boolean;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
}

/** Every kind of object the backend creates. */
export type K8sObject = Namespace | ConfigMap | Pod;
