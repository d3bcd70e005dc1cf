// Types for the parts of @cornerstonejs/codec-charls (CharLS 2.x compiled to WebAssembly) we use.
declare module '@cornerstonejs/codec-charls/wasmjs' {
  export interface FrameInfo {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
  }
  export interface JpegLSEncoder {
    /** Pixel buffer inside WASM memory sized for the frame; fill it before encode(). */
    getDecodedBuffer(frame: FrameInfo): Uint8Array;
    getEncodedBuffer(): Uint8ClampedArray;
    setNearLossless(near: number): void;
    /** 0 none (planar), 1 line, 2 sample. */
    setInterleaveMode(mode: number): void;
    encode(): void;
    delete(): void;
  }
  export interface JpegLSDecoder {
    getEncodedBuffer(length: number): Uint8Array;
    getDecodedBuffer(): Uint8ClampedArray;
    decode(): void;
    getFrameInfo(): FrameInfo;
    delete(): void;
  }
  export interface CharLSModule {
    JpegLSEncoder: new () => JpegLSEncoder;
    JpegLSDecoder: new () => JpegLSDecoder;
    getVersion(): string;
  }
  const factory: (options?: Record<string, unknown>) => Promise<CharLSModule>;
  export default factory;
}
