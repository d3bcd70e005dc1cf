// Open Inference Protocol (KServe v2) REST payloads as TypeBox schemas: they validate the JSON
// header of every infer request (compiled once, errors name the field), and document the routes in
// openapi.yaml. The shapes follow kserve/open-inference-protocol inference_rest.md and Triton's
// binary tensor data extension.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DATATYPES, MAX_RANK } from '../../tensor-wire.js';

const Parameters = Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 1024 }), Type.Number(), Type.Boolean()]), {
  description: 'Key/value parameters ($parameters): strings, numbers or booleans.',
});

const Shape = Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_RANK, description: 'Row-major dimensions; the first is the batch.' });

export const RequestInput = Type.Object(
  {
    name: Type.String({ maxLength: 64 }),
    shape: Shape,
    datatype: Type.String({ maxLength: 16, description: `One of ${DATATYPES.join(', ')}.` }),
    parameters: Type.Optional(Parameters),
    data: Type.Optional(Type.Array(Type.Unknown(), { description: 'The tensor, flat or nested row-major; left out when parameters.binary_data_size says its bytes follow the JSON.' })),
  },
  { additionalProperties: false },
);

export const RequestOutput = Type.Object({ name: Type.String({ maxLength: 64 }), parameters: Type.Optional(Parameters) }, { additionalProperties: false });

export const InferRequest = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 256, description: 'Echoed in the response.' })),
    // Triton's clients and the binary extension's own example send these: accepted, checked against the path.
    model_name: Type.Optional(Type.String({ maxLength: 200 })),
    model_version: Type.Optional(Type.String({ maxLength: 64 })),
    parameters: Type.Optional(Parameters),
    inputs: Type.Array(RequestInput, { maxItems: 16 }),
    outputs: Type.Optional(Type.Array(RequestOutput, { maxItems: 16 })),
  },
  { additionalProperties: false, $id: 'V2InferRequest' },
);
export type InferRequest = Static<typeof InferRequest>;
export const checkInferRequest = TypeCompiler.Compile(InferRequest);

const ResponseOutput = Type.Object({
  name: Type.String(),
  shape: Shape,
  datatype: Type.String(),
  parameters: Type.Optional(Parameters),
  data: Type.Optional(Type.Array(Type.Unknown())),
});

export const InferResponse = Type.Object(
  {
    model_name: Type.String(),
    model_version: Type.Optional(Type.String()),
    id: Type.Optional(Type.String()),
    parameters: Type.Optional(Parameters),
    outputs: Type.Array(ResponseOutput),
  },
  { $id: 'V2InferResponse' },
);

const MetadataTensor = Type.Object({ name: Type.String(), datatype: Type.String(), shape: Type.Array(Type.Integer({ minimum: -1 }), { description: '−1: a variable dimension (the batch).' }) });

export const ModelMetadata = Type.Object(
  {
    name: Type.String(),
    versions: Type.Optional(Type.Array(Type.String())),
    platform: Type.String(),
    inputs: Type.Array(MetadataTensor),
    outputs: Type.Array(MetadataTensor),
    parameters: Type.Optional(Parameters),
  },
  { $id: 'V2ModelMetadata' },
);

export const ServerMetadata = Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) }, { $id: 'V2ServerMetadata' });
export const ServerLive = Type.Object({ live: Type.Boolean() });
export const ServerReady = Type.Object({ ready: Type.Boolean() });
export const ModelReady = Type.Object({ name: Type.String(), ready: Type.Boolean() });
export const V2Error = Type.Object({ error: Type.String() }, { $id: 'V2Error', description: 'Every v2 failure: {"error": "<message>"} (the status follows Triton\'s mapping; docs/open-inference-protocol.md).' });

export const ModelParams = Type.Object({ model: Type.String({ maxLength: 200 }) });
export const VersionParams = Type.Object({ model: Type.String({ maxLength: 200 }), version: Type.String({ maxLength: 64 }) });
