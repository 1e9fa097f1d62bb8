/** The leasehold version reported by sys/health and sys/seal-status. */
export const VERSION = "0.1.0";
