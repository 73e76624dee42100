/** Which accelerator nodes get: KVM where a probe boot shows it works (cached per host kernel), else TCG. */
import { cachedKvmProbe, chooseAccel, type AccelDecision } from '../host/accel.js';
import type { StoredImage } from '../images/store.js';
import { cacheDir, type RunContext } from './context.js';
import path from 'node:path';

export interface AccelOptions {
  /** Build the tiny image when the probe needs it (launch); preflight only uses it when present. */
  allowBuild: boolean;
  /** Probe again instead of using the cached result. */
  reprobe?: boolean;
}

export async function decideAccel(c: RunContext, o: AccelOptions): Promise<AccelDecision> {
  return chooseAccel(c.env, () =>
    cachedKvmProbe({
      cacheFile: path.join(cacheDir(c), 'accel-probe.json'),
      runner: c.proc,
      log: c.log,
      signal: c.signal,
      reprobe: o.reprobe,
      noKernelDetail: 'KVM was not probed yet (the probe boots the tiny image; `falcon image build tiny` or a launch does it)',
      // The probe boots the tiny image's kernel.
      kernel: async () => {
        let img: StoredImage | undefined;
        if (o.allowBuild) img = await c.store.ensure('tiny', c.signal);
        else if (await c.store.has('tiny')) img = await c.store.get('tiny');
        return img?.kernel ? { kernel: img.kernel, initrd: img.initrd } : undefined;
      },
    }),
  );
}
