// JSON Schemas for the KServe objects in deploy/kserve/, written by hand for the fields we use
// (KServe publishes no npm model, and its CRD YAML is not copied here). They follow KServe's Go API
// types (github.com/kserve/kserve, main branch as read for this change, pkg/apis/serving):
//   - serving.kserve.io/v1alpha1 ServingRuntime: ServingRuntimeSpec, SupportedModelFormat,
//     ServingRuntimePodSpec (pkg/apis/serving/v1alpha1/servingruntime_types.go);
//   - serving.kserve.io/v1beta1 InferenceService: PredictorSpec, ModelSpec, ModelFormat,
//     PredictorExtensionSpec, ComponentExtensionSpec (pkg/apis/serving/v1beta1/predictor.go,
//     predictor_model.go, component.go); docs: https://kserve.github.io/website/latest/reference/api/
// Required fields, types and enums are KServe's; `additionalProperties: false` is ours, at every
// level we write, so a misspelt or unplanned field is an error until it is added here (after checking
// KServe's CRD). Embedded Kubernetes types (containers, volumes, tolerations, affinity, resources,
// env, deploymentStrategy) are left open here and checked by tools/deploy/validate.ts against
// kubernetes-models' schemas for those types instead.

const string = { type: 'string' } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const k8sObject = { type: 'object' } as const;
const k8sList = { type: 'array', items: { type: 'object' } } as const;
/** KServe's InferenceServiceProtocol constants (pkg/constants). */
export const PROTOCOLS = ['v1', 'v2', 'grpc-v1', 'grpc-v2'] as const;

const metadata = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    // KServe's webhook: a lower-case DNS-1035 label for an InferenceService
    name: { type: 'string', pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
    namespace: string,
    labels: stringMap,
    annotations: stringMap,
  },
} as const;

export const servingRuntimeSchema = {
  $id: 'serving.kserve.io/v1alpha1/ServingRuntime',
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'serving.kserve.io/v1alpha1' },
    kind: { const: 'ServingRuntime' },
    metadata,
    spec: {
      type: 'object',
      required: ['containers'],
      additionalProperties: false,
      properties: {
        supportedModelFormats: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: string,
              version: string, // "major", "major.minor" or "major.minor.patch"
              autoSelect: { type: 'boolean' },
              priority: { type: 'integer', minimum: 1 },
            },
          },
        },
        multiModel: { type: 'boolean' },
        disabled: { type: 'boolean' },
        protocolVersions: { type: 'array', items: { enum: PROTOCOLS } },
        // ServingRuntimePodSpec (inline)
        containers: { type: 'array', minItems: 1, items: { type: 'object', required: ['name'], properties: { name: string } } },
        volumes: k8sList,
        nodeSelector: stringMap,
        affinity: k8sObject,
        tolerations: k8sList,
        labels: stringMap,
        annotations: stringMap,
        imagePullSecrets: k8sList,
      },
    },
  },
} as const;

export const inferenceServiceSchema = {
  $id: 'serving.kserve.io/v1beta1/InferenceService',
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'serving.kserve.io/v1beta1' },
    kind: { const: 'InferenceService' },
    metadata,
    spec: {
      type: 'object',
      required: ['predictor'],
      additionalProperties: false,
      properties: {
        predictor: {
          type: 'object',
          required: ['model'],
          additionalProperties: false,
          properties: {
            model: {
              type: 'object',
              required: ['modelFormat'],
              additionalProperties: false,
              properties: {
                modelFormat: {
                  type: 'object',
                  required: ['name'],
                  additionalProperties: false,
                  properties: { name: string, version: string },
                },
                runtime: string,
                protocolVersion: { enum: PROTOCOLS },
                // KServe's storage initializer understands these schemes (and Azure blob https URLs)
                storageUri: { type: 'string', pattern: '^(gs|s3|pvc|file|https?|hdfs|webhdfs|oci|hf)://.+' },
                // corev1.Container (inline) overrides we allow
                args: { type: 'array', items: string },
                env: k8sList,
                resources: k8sObject,
              },
            },
            // ComponentExtensionSpec (inline)
            minReplicas: { type: 'integer', minimum: 0 },
            maxReplicas: { type: 'integer', minimum: 0 },
            scaleTarget: { type: 'integer', minimum: 1 },
            scaleMetric: { enum: ['cpu', 'memory', 'concurrency', 'rps'] },
            containerConcurrency: { type: 'integer', minimum: 0 },
            timeout: { type: 'integer', minimum: 1 },
            deploymentStrategy: k8sObject,
            labels: stringMap,
            annotations: stringMap,
            // PodSpec (inline) fields we allow
            serviceAccountName: string,
            nodeSelector: stringMap,
            tolerations: k8sList,
            terminationGracePeriodSeconds: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
  },
} as const;
