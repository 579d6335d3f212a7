/** Pipeline documents shared by tests and load tests (imports nothing, so any process can use it). */

/** The five-node speech front end of the issue: downmix, resample 48k→16k, gain, normalize, vad. */
export const asrFrontEnd = {
  name: 'asr-frontend',
  nodes: [
    { id: 'mono', type: 'downmix' },
    { id: 'resample', type: 'resample', params: { sample_rate: 16000, quality: 'high' } },
    { id: 'gain', type: 'gain', params: { db: -3 } },
    { id: 'norm', type: 'normalize', params: { target_dbfs: -3 } },
    { id: 'vad', type: 'vad', inputs: ['norm'] },
  ],
  output: 'norm',
};
