// SPDX-License-Identifier: GPL-2.0

//! Plain definitions of the DMA API (`DMA_MAPPING_ERROR`, `DMA_BIT_MASK`, `fls64`, `enum
//! dma_data_direction`), shared by every layer: the copy rules of a direction are
//! [`super::bounce_policy`]'s.

/// The DMA error cookie (Linux `DMA_MAPPING_ERROR`): never a valid address.
pub const DMA_MAPPING_ERROR: u64 = u64::MAX;

/// Linux `DMA_BIT_MASK(bits)`: the mask of the low `bits` bits.
pub const fn dma_bit_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Linux `fls64()`: the 1-based index of the highest set bit, 0 for 0.
pub const fn fls64(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// Direction of a streaming mapping (Linux `enum dma_data_direction`;
/// `DMA_NONE` is not representable and is refused by `DataDirection::from_raw`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirection {
    /// `DMA_BIDIRECTIONAL`.
    Bidirectional,
    /// `DMA_TO_DEVICE`.
    ToDevice,
    /// `DMA_FROM_DEVICE`.
    FromDevice,
}
