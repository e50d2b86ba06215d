import { packageInfo } from '@speakerd/plugin-sdk';

/** speakerd's version, from the host package's package.json. */
export const VERSION: string = packageInfo(import.meta.url).version;
