// The parts of the API's answers the page reads. Everything the server is still adding (or that a
// model may lack) is optional, so an older server or a model without calibration never breaks it.

export interface CostDoc {
  kind: 'passes' | 'adaptive' | string;
  description?: string;
  passes?: number;
  measured?: { rows: number; temperature: number; evaluations: number };
}

export interface ImageDoc {
  formats: string[];
  channels: number;
  height: number;
  width: number;
  resizeOption: boolean;
}

export interface ModelCard {
  name: string;
  status: 'loading' | 'ready' | 'unavailable' | string;
  reason?: string;
  family?: string;
  description?: string;
  provider?: string;
  dataKind?: string;
  dataShape?: number[];
  latentSize?: number;
  latentParts?: { name: string; shape: number[] }[];
  input?: {
    kind: string;
    size: number;
    shape: number[];
    layout?: string;
    range: [number, number] | null;
    bitDepth: number | null;
    pixelMapping: string | null;
    images: ImageDoc | null;
  };
  limits?: { maxItemsPerRequest: number; maxSamplesPerRequest: number };
  sampling?: {
    temperature: { default: number; min: number; minExclusive: boolean; max: number; measured?: boolean };
    seed: { min: number; max: number };
  };
  likelihood?: { scores: string[]; defaultScores: string[]; batchTest: boolean; dequantization?: string[] };
  anomaly?: { defaultScore: string; targetFalsePositiveRate: number };
  cost?: { forward: CostDoc; inverse: CostDoc };
  calibration?: {
    split?: string;
    count?: number;
    defaultScore: string;
    targetFalsePositiveRate?: number;
    threshold: number;
    scoredAt?: string;
    thresholds?: Record<string, number>;
    distribution?: { score: string; quantiles: number[] } | null;
  } | null;
  quality?: {
    dataset?: string;
    split?: string;
    count?: number;
    testLogLikelihood?: number;
    testBitsPerDim?: number;
    parameters?: number;
    label?: string;
  } | null;
}

export interface ModelList {
  defaultModel?: string;
  models: ModelCard[];
}

export interface SampleAnswer {
  model: string;
  cost?: unknown;
  temperature: number;
  seed: number;
  output: string;
  logLikelihood: number[];
  images?: string[];
  outputs?: number[][];
}

export interface DecodeAnswer {
  outputs?: number[][];
  images?: string[];
  logLikelihood: number[];
}

export interface LikelihoodResult {
  logLikelihood: number;
  bitsPerDim: number;
  scores: Record<string, number | null>;
  anomalyScore: number;
  isAnomaly: boolean;
}

export interface BatchTest {
  batchSize?: number;
  statistic: number;
  threshold: number;
  pValue: number;
  isOutOfDistribution: boolean;
}

export interface LikelihoodAnswer {
  cost?: unknown;
  results: LikelihoodResult[];
  batchTest?: BatchTest;
}

export interface InterpolateAnswer {
  cost?: unknown;
  encodeCost?: unknown;
  method: string;
  steps: number;
  t: number[];
  images?: string[];
  outputs?: number[][];
  logLikelihood: number[];
}

/** One input the page can hand to /interpolate or show: an image (base64 PNG…) or a data row. */
export type Item = { kind: 'image'; base64: string; label: string } | { kind: 'vector'; row: number[]; label: string };
