import { packageInfo } from './plugin.js';

/** The version of `@speakerd/plugin-sdk` that is running; plugins' `manifest.sdk` ranges are checked against it. */
export const SDK_VERSION: string = packageInfo(import.meta.url).version;
