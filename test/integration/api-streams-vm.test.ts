/**
 * The lossless stream cases of api-streams.test.ts on the VM wall (HostConfig.Runtime
 * "hull-vm"): a detached microVM's main process takes stdin over the API too.
 */
process.env.HULL_STREAMS_RUNTIME = 'hull-vm';
await import('./api-streams.test.js');
