/**
 * Cloud Storage implementation of the BlobStore port (issue 6 fills this in).
 * Importing this module registers it with `blobstore.ts`.
 */
import { registerGcs } from './blobstore.js';
import { GeotfrError } from './errors.js';

registerGcs((bucket) => {
  throw new GeotfrError('INTERNAL', `Cloud Storage is not implemented yet (gs://${bucket})`);
});
