/**
 * A CRI client, what the kubelet is to containerd: the runtime.v1 RuntimeService and
 * ImageService over gRPC on containerd's socket (@grpc/grpc-js with the CRI subset in
 * test/helpers/cri/api.proto). Messages are plain objects with the proto's snake_case names.
 */
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { REPO } from './hull.js';

/** A CRI message as decoded: plain objects, any shape the proto allows. */
export type Msg = Record<string, any>;

export interface Cri {
  runtime(method: string, req: Msg, timeoutMs?: number): Promise<Msg>;
  image(method: string, req: Msg): Promise<Msg>;
  close(): void;
}

export function criClient(socket: string): Cri {
  const def = protoLoader.loadSync(path.join(REPO, 'test', 'helpers', 'cri', 'api.proto'), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, grpc.ServiceClientConstructor> } };
  const creds = grpc.credentials.createInsecure();
  const rt = new pkg.runtime.v1.RuntimeService!(`unix://${socket}`, creds);
  const im = new pkg.runtime.v1.ImageService!(`unix://${socket}`, creds);
  const call = (c: grpc.Client, method: string, req: Msg, timeoutMs: number) =>
    new Promise<Msg>((resolve, reject) => {
      const fn = (c as unknown as Record<string, (r: Msg, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void>)[method];
      if (!fn) return reject(new Error(`no CRI method ${method}`));
      fn.call(c, req, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : resolve(r)));
    });
  return {
    runtime: (m, r, t = 180_000) => call(rt, m, r, t),
    image: (m, r) => call(im, m, r, 60_000),
    close() {
      rt.close();
      im.close();
    },
  };
}
